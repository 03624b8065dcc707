// The basket and checkout: an address from the book, a sandbox card token, and one
// Idempotency-Key per checkout attempt, reused when that attempt is retried.
import { useMemo, useState, type FormEvent } from "react";
import { api, call, newIdempotencyKey, type Address } from "../api/client";
import { Link, navigate } from "../app/router";
import { useSession } from "../auth/session";
import { ErrorNote, Field, Money, Status, moneyAmount, problemOf, useAction, useLoad } from "../ui/kit";
import { basket, useBasket, type BasketLine } from "./basket";

// The sandbox gateway's card tokens (README, "Sandbox card tokens").
const CARDS = [
  ["tok_visa", "Visa ending 4242 (sandbox: approved)"],
  ["tok_chargeDeclined", "Card ending 0002 (sandbox: declined)"],
  ["tok_insufficientFunds", "Card ending 9995 (sandbox: insufficient funds)"],
] as const;

function total(lines: BasketLine[]): string {
  const currency = lines[0]?.unitPrice?.currencyCode ?? "USD";
  const sum = lines.reduce((acc, l) => acc + moneyAmount(l.unitPrice) * l.quantity, 0);
  return new Intl.NumberFormat("en", { style: "currency", currency }).format(sum);
}

export function BasketPage() {
  const lines = useBasket();
  return (
    <section>
      <h1>Your basket</h1>
      {lines.length === 0 ? (
        <p>
          Your basket is empty. <Link href="/search">Find something</Link>.
        </p>
      ) : (
        <>
          <BasketTable lines={lines} editable />
          <p className="total">Total: {total(lines)}</p>
          <Link className="button" href="/basket/checkout">
            Check out
          </Link>
        </>
      )}
    </section>
  );
}

function BasketTable({ lines, editable }: { lines: BasketLine[]; editable?: boolean }) {
  return (
    <table className="basket" aria-label="Basket">
      <thead>
        <tr>
          <th scope="col">Product</th>
          <th scope="col">Price</th>
          <th scope="col">Quantity</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((l) => (
          <tr key={l.productId}>
            <td>
              <Link href={`/products/${l.productId}`}>{l.title}</Link>
            </td>
            <td>
              <Money value={l.unitPrice} />
            </td>
            <td>
              {editable ? (
                <>
                  <input aria-label={`Quantity of ${l.title}`} type="number" min={0} value={l.quantity} onChange={(e) => basket.setQuantity(l.productId, Number(e.target.value))} />{" "}
                  <button type="button" className="link" onClick={() => basket.setQuantity(l.productId, 0)}>
                    Remove <span className="visually-hidden">{l.title}</span>
                  </button>
                </>
              ) : (
                l.quantity
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Checkout() {
  const { user } = useSession();
  const lines = useBasket();
  const userId = user?.userId ?? "me";
  const book = useLoad(() => call(api.GET("/v1/users/{userId}/addresses", { params: { path: { userId } } })), [userId]);
  const [addressId, setAddressId] = useState("");
  const [card, setCard] = useState<string>(CARDS[0][0]);
  // One key per attempt: the same basket, address and card retried keep it, so a lost answer
  // never charges twice; any change starts a new attempt with a new key.
  const attempt = JSON.stringify([lines, addressId, card]);
  const key = useMemo(() => ({ attempt, value: newIdempotencyKey() }), [attempt]);
  const chosen = addressId || book.data?.addresses?.find((a) => a.isDefaultShipping)?.addressId || book.data?.addresses?.[0]?.addressId || "";
  const place = useAction(async () => {
    const order = await call(
      api.POST("/v1/orders", {
        params: { header: { "Idempotency-Key": key.value } },
        body: {
          items: lines.map((l) => ({ productId: l.productId, quantity: String(l.quantity) })),
          addressId: chosen,
          paymentMethodToken: card,
        },
      }),
    );
    basket.clear();
    navigate(`/orders/${order.orderId}`);
    return order;
  });
  if (lines.length === 0) return <p>Your basket is empty.</p>;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void place.run();
  };
  const pending = place.error && problemOf(place.error).reason === "PAYMENT_PENDING";
  return (
    <section>
      <h1>Checkout</h1>
      <BasketTable lines={lines} />
      <p className="total">Total: {total(lines)}</p>
      <form onSubmit={submit} aria-label="Checkout">
        <fieldset>
          <legend>Ship to</legend>
          <ErrorNote error={book.error} />
          {book.data?.addresses?.map((a) => (
            <label key={a.addressId} className="check">
              <input type="radio" name="address" value={a.addressId} checked={chosen === a.addressId} onChange={() => setAddressId(a.addressId ?? "")} /> {oneLine(a)}
            </label>
          ))}
          {book.data && !book.data.addresses?.length ? <p>Your address book is empty: add an address below.</p> : null}
        </fieldset>
        <label className="field">
          <span>Card</span>
          <select value={card} onChange={(e) => setCard(e.target.value)}>
            {CARDS.map(([token, label]) => (
              <option key={token} value={token}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <ErrorNote error={place.error} />
        <button type="submit" disabled={place.busy || !chosen}>
          {place.busy ? "Placing the order…" : pending ? "Check again" : "Place order"}
        </button>
      </form>
      <AddressForm userId={userId} onSaved={(a) => {
        setAddressId(a.addressId ?? "");
        book.reload();
      }} />
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

