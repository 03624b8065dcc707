// The returns part of an order page (loaded with the page, not with the shop): the order's
// returns and their state, and for the buyer of a delivered order a form per seller to ask
// for a return (the API takes one seller's lines per return, ERROR_REASON_RETURN_SPANS_SELLERS).
import { useRef, useState, type FormEvent } from "react";
import { api, call, newIdempotencyKey, type Order } from "../api/client";
import { useSession } from "../auth/session";
import { ErrorNote, Money, Status, dateTime, problemOf, useAction, useLoad } from "../ui/kit";
import { RETURNABLE_ORDER_STATUSES, itemsText, listReturns, returnStateWords, returnable, type Return } from "./returns";

const REASONS = ["Arrived damaged", "Not as described", "Wrong item sent", "No longer needed", "Other"] as const;

export default function OrderReturns({ order }: { order: Order }) {
  const { user } = useSession();
  const orderId = order.orderId ?? "";
  // A refund changes the order, and the order page follows it live: read the returns again then.
  const list = useLoad(() => listReturns(orderId), [orderId, order.updateTime, order.status]);
  const returns = list.data ?? [];
  const isBuyer = Boolean(user?.userId) && user?.userId === order.buyerId;
  const canAsk = isBuyer && RETURNABLE_ORDER_STATUSES.has(order.status ?? "");
  const left = returnable(order, returns);
  const sellers = [...new Set(order.items.map((i) => i.sellerId ?? ""))];
  return (
    <section aria-labelledby="returns-title">
      <h2 id="returns-title">Returns</h2>
      <ErrorNote error={list.error} />
      {list.data && returns.length === 0 ? <p>No returns for this order.</p> : null}
      {returns.length > 0 ? <ReturnsTable returns={returns} /> : null}
      {canAsk && list.data
        ? sellers.map((sellerId, index) => (
            <ReturnRequestForm
              key={sellerId}
              order={order}
              sellerId={sellerId}
              label={sellers.length > 1 ? `Return items of parcel ${index + 1} of ${sellers.length}` : "Return items"}
              left={left}
              onCreated={list.reload}
            />
          ))
        : null}
    </section>
  );
}

export function ReturnsTable({ returns }: { returns: readonly Return[] }) {
  return (
    <table aria-label="Returns of this order">
      <thead>
        <tr>
          <th scope="col">Asked</th>
          <th scope="col">Items</th>
          <th scope="col">Reason</th>
          <th scope="col">State</th>
          <th scope="col">Amount</th>
        </tr>
      </thead>
      <tbody>
        {returns.map((r) => (
          <tr key={r.returnId} data-return-id={r.returnId}>
            <td>{dateTime(r.createTime)}</td>
            <td>{itemsText(r)}</td>
            <td>{r.reason}</td>
            <td>
              <strong data-testid="return-state" data-state={r.state}>
                {returnStateWords(r.state)}
              </strong>
              {r.decisionReason ? <p className="muted">Seller's note: {r.decisionReason}</p> : null}
              {r.refundFailure ? <p className="note">The refund did not go through yet; the seller will try again.</p> : null}
            </td>
            <td>{r.refundAmount && r.state === "RETURN_STATE_REFUNDED" ? <Money value={r.refundAmount} /> : <Money value={r.itemsTotal} />}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// Outcomes after which the return may have been created: the retry reuses its key.
function outcomeUnknown(error: unknown): boolean {
  const problem = problemOf(error);
  return problem.status === 0 || problem.status >= 500;
}

function ReturnRequestForm({ order, sellerId, label, left, onCreated }: { order: Order; sellerId: string; label: string; left: Map<string, number>; onCreated: () => void }) {
  const lines = order.items.filter((i) => (i.sellerId ?? "") === sellerId && (left.get(i.productId) ?? 0) > 0);
  const [done, setDone] = useState<Return | null>(null);
  // One Idempotency-Key per request (these items, this reason), kept while its outcome is
  // unknown, so a retry after a lost answer never asks twice.
  const key = useRef<{ attempt: string; value: string } | null>(null);
  const ask = useAction(async (body: { items: { productId: string; quantity: string }[]; reason: string }) => {
    const attempt = JSON.stringify(body);
    if (key.current?.attempt !== attempt) key.current = { attempt, value: newIdempotencyKey() };
    try {
      const created = await call(
        api.POST("/v1/orders/{orderId}/returns", {
          params: { path: { orderId: order.orderId ?? "" }, header: { "Idempotency-Key": key.current.value } },
          body,
        }),
      );
      key.current = null;
      setDone(created);
      onCreated();
      return created;
    } catch (failure) {
      if (!outcomeUnknown(failure)) key.current = null;
      throw failure;
    }
  });
  const [invalid, setInvalid] = useState("");
  if (lines.length === 0) return null;
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const items = lines
      .map((l) => ({ productId: l.productId, quantity: String(Number(data.get(`quantity-${l.productId}`) ?? 0)) }))
      .filter((i) => Number(i.quantity) > 0);
    const why = String(data.get("reason") ?? "");
    const details = String(data.get("details") ?? "").trim();
    if (items.length === 0) {
      setInvalid("Choose how many of at least one item to send back.");
      return;
    }
    setInvalid("");
    setDone(null);
    // A request sent is done with: the form starts empty for another one.
    if (await ask.run({ items, reason: details ? `${why}: ${details}` : why })) form.reset();
  };
  const titleId = `return-form-${sellerId}`;
  return (
    <form onSubmit={(event) => void submit(event)} className="card return-form" aria-labelledby={titleId}>
      <h3 id={titleId}>{label}</h3>
      <fieldset>
        <legend>How many to send back</legend>
        {lines.map((l) => (
          <label key={l.productId} className="field">
            <span>
              Quantity to return of {l.title} <span className="muted">(up to {left.get(l.productId)})</span>
            </span>
            <input type="number" name={`quantity-${l.productId}`} min={0} max={left.get(l.productId)} defaultValue={0} />
          </label>
        ))}
      </fieldset>
      <label className="field">
        <span>Why are you returning them?</span>
        <select name="reason" defaultValue={REASONS[0]}>
          {REASONS.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Details for the seller (optional)</span>
        <textarea name="details" rows={2} maxLength={400} />
      </label>
      {invalid ? (
        <div className="error" role="alert">
          <p>{invalid}</p>
        </div>
      ) : null}
      <ErrorNote error={ask.error} />
      <button type="submit" disabled={ask.busy}>
        {ask.busy ? "Sending…" : ask.error && outcomeUnknown(ask.error) ? "Try again" : "Ask for a return"}
      </button>
      {done ? <Status>Your return was sent to the seller; its state is in the list above.</Status> : null}
    </form>
  );
}
