// Buyers' orders: the history, and a live order page (WatchOrder) with cancel, returns and
// reviews of delivered items.
import { lazy, Suspense, useEffect, useState, type FormEvent } from "react";
import { api, call, type Order } from "../api/client";
import type { ApiProblem } from "../api/errors";
import { Link } from "../app/router";
import { ErrorNote, Pager, Field, Money, Status, dateTime, enumWords, useAction, useLoad } from "../ui/kit";
import { watchOrder } from "./watch";

// Returns load with a delivered order's page only: the shop's first load does not carry them.
const OrderReturns = lazy(() => import("../returns/OrderReturns"));
// Orders that can have returns: delivered, and refunded (in part or whole) since.
const WITH_RETURNS = new Set(["ORDER_STATUS_DELIVERED", "ORDER_STATUS_PARTIALLY_REFUNDED", "ORDER_STATUS_REFUNDED"]);

export function statusWords(status: string | undefined): string {
  return enumWords(status, "ORDER_STATUS_");
}

export function OrderHistory() {
  const [tokens, setTokens] = useState<string[]>([]);
  const pageToken = tokens[tokens.length - 1];
  const list = useLoad(() => call(api.GET("/v1/orders", { params: { query: { pageSize: 20, pageToken } } })), [pageToken]);
  return (
    <section>
      <h1>Your orders</h1>
      <ErrorNote error={list.error} />
      {list.data?.orders?.length === 0 ? <p>No orders yet.</p> : null}
      <OrderTable orders={list.data?.orders ?? []} />
      <Pager
        label="Pages"
        atFirst={!tokens.length}
        nextPageToken={list.data?.nextPageToken}
        onPrevious={() => setTokens(tokens.slice(0, -1))}
        onNext={(token) => setTokens([...tokens, token])}
      />
    </section>
  );
}

export function OrderTable({ orders, hrefPrefix = "/orders/" }: { orders: readonly Order[]; hrefPrefix?: string }) {
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">Order</th>
          <th scope="col">Placed</th>
          <th scope="col">Status</th>
          <th scope="col">Total</th>
        </tr>
      </thead>
      <tbody>
        {orders.map((o) => (
          <tr key={o.orderId}>
            <td>
              <Link href={`${hrefPrefix}${o.orderId}`}>{o.items.map((i) => i.title).join(", ") || o.orderId}</Link>
            </td>
            <td>{dateTime(o.createTime)}</td>
            <td>{statusWords(o.status)}</td>
            <td>
              <Money value={o.total} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function OrderPage({ orderId }: { orderId: string }) {
  const [order, setOrder] = useState<Order | null>(null);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  useEffect(() => watchOrder(orderId, setOrder, setProblem), [orderId]);
  const cancel = useAction(async () => setOrder(await call(api.POST("/v1/orders/{orderId}:cancel", { params: { path: { orderId } }, body: { reason: "Cancelled by the buyer" } }))));
  if (!order) return problem ? <div className="error" role="alert"><p>{problem.message}</p></div> : <Status>Loading the order…</Status>;
  return (
    <section>
      <h1>Order {order.orderId}</h1>
      <p className="order-status">
        Status: <strong data-testid="order-status" data-status={order.status}>{statusWords(order.status)}</strong> <span className="muted">(updates live)</span>
      </p>
      {problem ? <p className="muted" role="status">Live updates paused: {problem.message}</p> : null}
      <table>
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col">Quantity</th>
            <th scope="col">Price</th>
            <th scope="col">Shipment</th>
          </tr>
        </thead>
        <tbody>
          {order.items.map((item) => (
            <tr key={item.productId}>
              <td>
                <Link href={`/products/${item.productId}`}>{item.title}</Link>
              </td>
              <td>{item.quantity}</td>
              <td>
                <Money value={item.lineTotal} />
              </td>
              <td>{item.shipTime ? `Shipped with ${item.carrier}, tracking ${item.trackingNumber}` : "Not shipped yet"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <OrderTotals order={order} />
      {order.payment?.refundedAmount && Number(order.payment.refundedAmount.units ?? 0) > 0 ? (
        <p className="total">
          Refunded: <Money value={order.payment.refundedAmount} />
        </p>
      ) : null}
      {order.status === "ORDER_STATUS_PAID" ? (
        <>
          <button type="button" className="secondary" onClick={() => void cancel.run()} disabled={cancel.busy}>
            Cancel the order
          </button>
          <ErrorNote error={cancel.error} />
        </>
      ) : null}
      <h2>History</h2>
      <ol className="history">
        {order.statusHistory?.map((change, i) => (
          <li key={i}>
            {dateTime(change.changeTime)}: {statusWords(change.toStatus)}
            {change.reason ? ` (${change.reason})` : ""}
          </li>
        ))}
      </ol>
      {WITH_RETURNS.has(order.status ?? "") ? (
        <Suspense fallback={<Status>Loading the returns…</Status>}>
          <OrderReturns order={order} />
        </Suspense>
      ) : null}
      {order.status === "ORDER_STATUS_DELIVERED" ? (
        <section aria-labelledby="review-title">
          <h2 id="review-title">Review what you bought</h2>
          {order.items.map((item) => (
            <ReviewForm key={item.productId} productId={item.productId} title={item.title ?? ""} />
          ))}
        </section>
      ) : null}
    </section>
  );
}

/** Subtotal, shipping, tax and total as the order service priced them at placement; each
 * seller's part as well when the order has more than one seller (each ships and taxes apart). */
function OrderTotals({ order }: { order: Order }) {
  const parts = order.parts ?? [];
  const itemsOf = (sellerId: string | undefined) =>
    order.items
      .filter((i) => i.sellerId === sellerId)
      .map((i) => i.title)
      .join(", ");
  return (
    <>
      <dl className="totals" aria-label="Order totals" data-testid="order-totals">
        <dt>Items</dt>
        <dd data-testid="order-subtotal">
          <Money value={order.subtotal} />
        </dd>
        <dt>Shipping</dt>
        <dd data-testid="order-shipping">
          <Money value={order.shippingTotal} />
        </dd>
        <dt>Tax</dt>
        <dd data-testid="order-tax">
          <Money value={order.taxTotal} />
        </dd>
        <dt>Total</dt>
        <dd data-testid="order-total" className="total">
          <Money value={order.total} />
        </dd>
      </dl>
      {parts.length > 1 ? (
        <table aria-label="Per seller">
          <caption>Each seller ships and charges tax on their part</caption>
          <thead>
            <tr>
              <th scope="col">Seller's items</th>
              <th scope="col">Items</th>
              <th scope="col">Shipping</th>
              <th scope="col">Tax</th>
              <th scope="col">Total</th>
            </tr>
          </thead>
          <tbody>
            {parts.map((p) => (
              <tr key={p.sellerId} data-seller-id={p.sellerId}>
                <th scope="row">{itemsOf(p.sellerId)}</th>
                <td>
                  <Money value={p.subtotal} />
                </td>
                <td>
                  <Money value={p.shippingTotal} />
                </td>
                <td>
                  <Money value={p.taxTotal} />
                </td>
                <td>
                  <Money value={p.total} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}

function ReviewForm({ productId, title }: { productId: string; title: string }) {
  const [done, setDone] = useState(false);
  const save = useAction(async (rating: number, reviewTitle: string, body: string) => {
    await call(api.POST("/v1/products/{productId}/reviews", { params: { path: { productId } }, body: { rating, title: reviewTitle, body } }));
    setDone(true);
  });
  if (done) return <Status>Thanks, your review of {title} is published.</Status>;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    void save.run(Number(form.get("rating")), String(form.get("title")), String(form.get("body")));
  };
  return (
    <form onSubmit={submit} aria-label={`Review ${title}`} className="review-form">
      <h3>{title}</h3>
      <label className="field">
        <span>Rating</span>
        <select name="rating" defaultValue="5">
          {[5, 4, 3, 2, 1].map((n) => (
            <option key={n} value={n}>
              {n} stars
            </option>
          ))}
        </select>
      </label>
      <Field label="Title" name="title" required />
      <label className="field">
        <span>Your review</span>
        <textarea name="body" rows={3} />
      </label>
      <ErrorNote error={save.error} />
      <button type="submit" disabled={save.busy}>
        Publish the review
      </button>
    </form>
  );
}
