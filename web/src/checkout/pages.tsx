// The basket (the server-side cart) and its checkout: an address from the book, a sandbox
// card token, and one Idempotency-Key per checkout attempt, reused when that attempt's outcome
// is unknown (a lost answer, a timeout, a payment still pending) so a retry never charges twice.
import { useEffect, useState, type FormEvent } from "react";
import { api, call, newIdempotencyKey, type Address } from "../api/client";
import { Link, navigate } from "../app/router";
import { useSession } from "../auth/session";
import { ErrorNote, Money, Field, Status, problemOf, useAction, useLoad } from "../ui/kit";
import { basket, lineWarnings, useBasket, type Cart, type CartLine } from "./basket";

// The sandbox gateway's card tokens (README, "Sandbox card tokens").
const CARDS = [
  ["tok_visa", "Visa ending 4242 (sandbox: approved)"],
  ["tok_chargeDeclined", "Card ending 0002 (sandbox: declined)"],
  ["tok_insufficientFunds", "Card ending 9995 (sandbox: insufficient funds)"],
] as const;

// Outcomes after which the same attempt may have gone through: a retry must reuse its key.
const UNKNOWN_OUTCOME = new Set(["NETWORK", "PAYMENT_PENDING", "PAYMENT_UNAVAILABLE", "CART_CHECKOUT_IN_PROGRESS"]);

function outcomeUnknown(error: unknown): boolean {
  const problem = problemOf(error);
  return problem.status === 0 || problem.status >= 500 || UNKNOWN_OUTCOME.has(problem.reason);
}

// The cart has no destination, so no shipping or tax: the order priced at checkout has them.
function Totals({ cart, atCheckout = false }: { cart: Cart; atCheckout?: boolean }) {
  const discount = Number(cart.discountTotal?.units ?? 0) !== 0 || (cart.discountTotal?.nanos ?? 0) !== 0;
  return (
    <>
      {discount ? (
        <p className="total">
          You save: <Money value={cart.discountTotal} />
        </p>
      ) : null}
      <p className="total">
        Items: <Money value={cart.subtotal} />
      </p>
      <p className="muted">
        {atCheckout ? "Shipping and tax are added for the address you ship to when the order is placed; the order page shows them." : "Shipping and tax are calculated at checkout, for the address you ship to."}
      </p>
    </>
  );
}

/** Why the cart cannot be checked out as it stands, or "" when it can. */
function notReady(cart: Cart): string {
  if (cart.checkoutInProgress) return "A checkout of your basket is running; wait for it to end.";
  if (cart.readyForCheckout) return "";
  return "Some lines cannot be bought as they stand: see the notes above.";
}

export function BasketPage() {
  const { cart, error } = useBasket();
  const change = useAction(async (productId: string, quantity: number) => basket.setQuantity(productId, quantity));
  useEffect(() => {
    void basket.load();
  }, []);
  if (!cart) return error ? <ErrorNote error={error} /> : <Status>Loading your basket…</Status>;
  const lines = cart.items ?? [];
  const blocked = notReady(cart);
  return (
    <section>
      <h1>Your basket</h1>
      <ErrorNote error={change.error ?? error} />
      {lines.length === 0 ? (
        <p>
          Your basket is empty. <Link href="/search">Find something</Link>.
        </p>
      ) : (
        <>
          <BasketTable lines={lines} onChange={(id, q) => void change.run(id, q)} busy={change.busy} />
          <Totals cart={cart} />
          {blocked ? (
            <p className="note" role="note">
              {blocked}
            </p>
          ) : (
            <Link className="button" href="/basket/checkout">
              Check out
            </Link>
          )}
        </>
      )}
    </section>
  );
}

function QuantityInput({ line, onChange, disabled }: { line: CartLine; onChange: (quantity: number) => void; disabled: boolean }) {
  // Typed digits stay local until they make a whole quantity: clearing the field to type
  // another number must not remove the line (Remove does that).
  const [text, setText] = useState(String(line.quantity));
  const [shown, setShown] = useState(line.quantity);
  if (shown !== line.quantity) {
    setShown(line.quantity);
    setText(String(line.quantity));
  }
  return (
    <input
      aria-label={`Quantity of ${line.title ?? ""}`}
      type="number"
      min={1}
      max={100}
      value={text}
      disabled={disabled}
      onChange={(e) => {
        setText(e.target.value);
        const quantity = Number(e.target.value);
        if (Number.isInteger(quantity) && quantity >= 1 && quantity !== line.quantity) onChange(quantity);
      }}
    />
  );
}

function BasketTable({ lines, onChange, busy = false }: { lines: CartLine[]; onChange?: (productId: string, quantity: number) => void; busy?: boolean }) {
  return (
    <table className="basket" aria-label="Basket">
      <thead>
        <tr>
          <th scope="col">Product</th>
          <th scope="col">Price</th>
          <th scope="col">Quantity</th>
          <th scope="col">Line total</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((l) => {
          const id = l.productId ?? "";
          const warnings = lineWarnings(l);
          return (
            <tr key={id} data-product-id={id} data-availability={l.availability}>
              <td>
                <Link href={`/products/${id}`}>{l.title}</Link>
                {warnings.map((w) => (
                  <p key={w} className="note">
                    {w}
                  </p>
                ))}
              </td>
              <td>
                <Money value={l.unitPrice} />
              </td>
              <td>
                {onChange ? (
                  <>
                    <QuantityInput line={l} disabled={busy} onChange={(q) => onChange(id, q)} />{" "}
                    <button type="button" className="link" disabled={busy} onClick={() => onChange(id, 0)}>
                      Remove <span className="visually-hidden">{l.title}</span>
                    </button>
                  </>
                ) : (
                  l.quantity
                )}
              </td>
              <td>
                <Money value={l.lineTotal} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

interface Attempt {
  key: string;
  body: { productIds: string[]; addressId: string; paymentMethodToken: string };
  lines: CartLine[];
}

export function Checkout() {
  const { user } = useSession();
  const { cart, error } = useBasket();
  const userId = user?.userId ?? "me";
  const book = useLoad(() => call(api.GET("/v1/users/{userId}/addresses", { params: { path: { userId } } })), [userId]);
  const [addressId, setAddressId] = useState("");
  const [card, setCard] = useState<string>(CARDS[0][0]);
  useEffect(() => {
    void basket.load();
  }, []);
  // The attempt whose outcome is unknown (a lost answer, a 5xx, a pending payment, a checkout
  // still running): it is kept, key, lines and all, and "Try again" sends exactly it again, so
  // the server answers with the first outcome instead of charging twice. It is kept even when
  // the cart read afterwards is empty: a lost answer to a checkout that went through leaves
  // an empty cart, and only the retry tells which order it made. A known outcome ends it.
  const [unsettled, setUnsettled] = useState<Attempt | null>(null);
  const place = useAction(async (attempt: Attempt) => {
    try {
      const order = await call(
        api.POST("/v1/cart:checkout", {
          params: { header: { "Idempotency-Key": attempt.key } },
          body: attempt.body,
        }),
      );
      setUnsettled(null);
      navigate(`/orders/${order.orderId}`);
      return order;
    } catch (failure) {
      setUnsettled(outcomeUnknown(failure) ? attempt : null);
      throw failure;
    } finally {
      // Whatever happened, show the cart as the server has it: a paid order took its lines
      // out, a failed checkout left them all in place.
      void basket.load();
    }
  });
  if (!cart && !unsettled) return error ? <ErrorNote error={error} /> : <Status>Loading your basket…</Status>;
  const lines = unsettled?.lines ?? cart?.items ?? [];
  if (lines.length === 0 && !place.busy) return <p>Your basket is empty.</p>;
  const chosen = addressId || book.data?.addresses?.find((a) => a.isDefaultShipping)?.addressId || book.data?.addresses?.[0]?.addressId || "";
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void place.run(unsettled ?? { key: newIdempotencyKey(), body: { productIds: lines.map((l) => l.productId ?? ""), addressId: chosen, paymentMethodToken: card }, lines });
  };
  const blocked = unsettled || !cart ? "" : notReady(cart);
  return (
    <section>
      <h1>Checkout</h1>
      <BasketTable lines={lines} />
      {cart && !unsettled ? <Totals cart={cart} atCheckout /> : null}
      {blocked ? (
        <p className="note" role="note">
          {blocked} <Link href="/basket">Back to the basket</Link>
        </p>
      ) : null}
      <form onSubmit={submit} aria-label="Checkout">
        {/* While an attempt is unsettled its address and card stay as they were sent. */}
        <fieldset disabled={Boolean(unsettled)}>
          <legend>Ship to</legend>
          <ErrorNote error={book.error} />
          {book.data?.addresses?.map((a) => (
            <label key={a.addressId} className="check">
              <input type="radio" name="address" value={a.addressId} checked={(unsettled?.body.addressId ?? chosen) === a.addressId} onChange={() => setAddressId(a.addressId ?? "")} /> {oneLine(a)}
            </label>
          ))}
          {book.data && !book.data.addresses?.length ? <p>Your address book is empty: add an address below.</p> : null}
        </fieldset>
        <label className="field">
          <span>Card</span>
          <select value={unsettled?.body.paymentMethodToken ?? card} disabled={Boolean(unsettled)} onChange={(e) => setCard(e.target.value)}>
            {CARDS.map(([token, label]) => (
              <option key={token} value={token}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <ErrorNote error={place.error} />
        {unsettled && !place.busy ? (
          <p className="note" role="note">
            We do not know yet whether this order went through. Try again: the same order is sent, and you will not be charged twice.
          </p>
        ) : null}
        <button type="submit" disabled={place.busy || !chosen || (!!blocked && !unsettled)}>
          {place.busy ? "Placing the order…" : unsettled ? "Try again" : "Place order"}
        </button>
      </form>
      {unsettled ? null : (
        <AddressForm
          userId={userId}
          onSaved={(a) => {
            setAddressId(a.addressId ?? "");
            book.reload();
          }}
        />
      )}
    </section>
  );
}

export function oneLine(a: { recipientName?: string; line1?: string; city?: string; postalCode?: string; countryCode?: string }): string {
  return [a.recipientName, a.line1, [a.postalCode, a.city].filter(Boolean).join(" "), a.countryCode].filter(Boolean).join(", ");
}

export function AddressForm({ userId, onSaved }: { userId: string; onSaved: (a: Address) => void }) {
  const save = useAction(async (body: Address) => call(api.POST("/v1/users/{userId}/addresses", { params: { path: { userId } }, body })));
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const text = (name: string) => String(data.get(name) ?? "");
    const saved = await save.run({
      recipientName: text("recipientName"),
      line1: text("line1"),
      city: text("city"),
      postalCode: text("postalCode"),
      countryCode: text("countryCode").toUpperCase(),
      isDefaultShipping: true,
    });
    if (saved) {
      form.reset();
      onSaved(saved);
    }
  };
  return (
    <details className="address-form">
      <summary>Add an address</summary>
      <form onSubmit={submit} aria-label="Add an address">
        <Field label="Recipient" name="recipientName" autoComplete="name" required />
        <Field label="Street and number" name="line1" autoComplete="address-line1" required />
        <Field label="City" name="city" autoComplete="address-level2" required />
        <Field label="Postal code" name="postalCode" autoComplete="postal-code" />
        <Field label="Country code" name="countryCode" autoComplete="country" required minLength={2} maxLength={2} hint="Two letters, for example US" />
        <ErrorNote error={save.error} />
        <button type="submit" disabled={save.busy}>
          Save the address
        </button>
        {save.busy ? <Status>Saving…</Status> : null}
      </form>
    </details>
  );
}

