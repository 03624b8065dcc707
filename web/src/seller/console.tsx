// The seller console: their listings in every state, orders to ship, returns, the sales
// report as a chart, balance and payouts (payouts/SellerPayouts.tsx).
import { useState, type FormEvent } from "react";
import { api, call, type Order } from "../api/client";
import { Link } from "../app/router";
import { useSession } from "../auth/session";
import { OrderTable, statusWords } from "../orders/pages";
import { BarChart } from "../ui/BarChart";
import { ErrorNote, Field, Money, Status, formatMoney, moneyAmount, useAction, useLoad } from "../ui/kit";
import { MyListings } from "./listings";

export function SellerHome() {
  return (
    <section>
      <h1>Your shop</h1>
      <p className="actions">
        <Link className="button" href="/sell/products/new">
          New listing
        </Link>
        <Link href="/sell/orders">Orders to ship</Link>
        <Link href="/sell/returns">Returns</Link>
        <Link href="/sell/sales">Sales</Link>
        <Link href="/sell/payouts">Balance &amp; payouts</Link>
        <Link href="/sell/shipping">Shipping</Link>
      </p>
      <MyListings />
    </section>
  );
}

const OPEN_STATUSES = new Set(["ORDER_STATUS_PAID", "ORDER_STATUS_FULFILLING"]);

export function OrdersToShip() {
  const { user } = useSession();
  const list = useLoad(() => call(api.GET("/v1/orders", { params: { query: { pageSize: 50 } } })), []);
  const mine = (o: Order) => o.items.filter((i) => i.sellerId === user?.userId);
  const toShip = (list.data?.orders ?? []).filter((o) => OPEN_STATUSES.has(o.status ?? "") && mine(o).some((i) => !i.shipTime));
  return (
    <section>
      <h1>Orders to ship</h1>
      <ErrorNote error={list.error} />
      {list.data && toShip.length === 0 ? <p>Nothing to ship right now.</p> : null}
      {toShip.map((o) => (
        <ShipForm key={o.orderId} order={o} onShipped={list.reload} />
      ))}
      <h2>All your orders</h2>
      <OrderTable orders={list.data?.orders ?? []} hrefPrefix="/orders/" />
    </section>
  );
}

function ShipForm({ order, onShipped }: { order: Order; onShipped: () => void }) {
  const ship = useAction(async (carrier: string, trackingNumber: string) => {
    await call(api.POST("/v1/orders/{orderId}:ship", { params: { path: { orderId: order.orderId ?? "" } }, body: { carrier, trackingNumber } }));
    onShipped();
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    void ship.run(String(data.get("carrier")), String(data.get("trackingNumber")));
  };
  return (
    <form onSubmit={submit} className="card ship" aria-label={`Ship order ${order.orderId}`} data-order-id={order.orderId}>
      <h2>
        Order <Link href={`/orders/${order.orderId}`}>{order.orderId}</Link> · {statusWords(order.status)}
      </h2>
      <p>
        {order.items.map((i) => `${i.quantity} × ${i.title}`).join("; ")} · <Money value={order.total} />
      </p>
      <div className="inline">
        <Field label="Carrier" name="carrier" defaultValue="DHL" required />
        <Field label="Tracking number" name="trackingNumber" required />
        <button type="submit" disabled={ship.busy}>
          Mark as shipped
        </button>
      </div>
      <ErrorNote error={ship.error} />
    </form>
  );
}

function isoDay(date: Date) {
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** The sales report by day over the last `days` days, as a chart (sellers: their own). */
export function SalesChart({ title, days = 30 }: { title: string; days?: number }) {
  const [span, setSpan] = useState(days);
  const report = useLoad(() => {
    const end = new Date();
    const start = new Date(end.getTime() - (span - 1) * 86_400_000);
    const s = isoDay(start);
    const e = isoDay(end);
    return call(
      api.GET("/v1/reports/sales", {
        params: {
          query: {
            "startDate.year": s.year,
            "startDate.month": s.month,
            "startDate.day": s.day,
            "endDate.year": e.year,
            "endDate.month": e.month,
            "endDate.day": e.day,
            grouping: "SALES_REPORT_GROUPING_DAY",
          },
        },
      }),
    );
  }, [span]);
  const bars = (report.data?.rows ?? []).map((r) => ({
    label: `${r.date?.year}-${String(r.date?.month).padStart(2, "0")}-${String(r.date?.day).padStart(2, "0")}`,
    value: moneyAmount(r.total),
    text: `${formatMoney(r.total)} (${r.orderCount} orders)`,
  }));
  return (
    <section>
      <h1>{title}</h1>
      <label className="field inline-field">
        <span>Period</span>
        <select value={span} onChange={(e) => setSpan(Number(e.target.value))}>
          <option value={7}>Last 7 days</option>
          <option value={30}>Last 30 days</option>
          <option value={90}>Last 90 days</option>
        </select>
      </label>
      <ErrorNote error={report.error} />
      {report.data ? (
        <>
          <p className="total">
            Total: <Money value={report.data.total} />
          </p>
          <BarChart title={`Sales per day, last ${span} days`} bars={bars} />
        </>
      ) : (
        <Status>Loading the report…</Status>
      )}
    </section>
  );
}
