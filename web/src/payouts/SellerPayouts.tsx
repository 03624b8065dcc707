// "Balance & payouts" in the seller console: the balance per currency (available and
// pending, GET /v1/sellers/me/balance), the ledger newest first page by page
// (GET /v1/sellers/me/ledger) and the payouts made to the seller (GET /v1/sellers/me/payouts).
import { useState } from "react";
import { api, call } from "../api/client";
import { Link } from "../app/router";
import { ErrorNote, Pager, Money, Status, dateTime, useLoad } from "../ui/kit";
import { holdWords, kindWords, signedMoney, usePages } from "./payouts";

const LEDGER_PAGE = 20;
const PAYOUT_PAGE = 20;

export function SellerPayouts() {
  // "Refresh" reads the balance, the ledger and the payouts again.
  const [version, setVersion] = useState(0);
  const balance = useLoad(() => call(api.GET("/v1/sellers/{sellerId}/balance", { params: { path: { sellerId: "me" } } })), [version]);
  const balances = balance.data?.balances ?? [];
  return (
    <section>
      <h1>Balance &amp; payouts</h1>
      <section aria-labelledby="balance-heading">
        <h2 id="balance-heading">Your balance</h2>
        <ErrorNote error={balance.error} />
        {balance.loading && !balance.data ? <Status>Loading your balance…</Status> : null}
        {balance.data && balances.length === 0 ? <p>No money has moved yet: your first sale will show here.</p> : null}
        {balances.length > 0 ? (
          <table aria-label="Your balance">
            <thead>
              <tr>
                <th scope="col">Currency</th>
                <th scope="col">Available</th>
                <th scope="col">Pending</th>
              </tr>
            </thead>
            <tbody>
              {balances.map((b) => {
                const currency = b.available?.currencyCode ?? b.pending?.currencyCode ?? "";
                return (
                  <tr key={currency} data-currency={currency}>
                    <th scope="row">{currency}</th>
                    <td data-testid="available">
                      <Money value={b.available} />
                    </td>
                    <td data-testid="pending">
                      <Money value={b.pending} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
        {balance.data ? (
          <p className="muted">
            A sale is pending for {holdWords(balance.data.holdSeconds)} after it is paid, then available; the next payout run pays out what is available. Refunds count at once.
          </p>
        ) : null}
        <button type="button" className="secondary" onClick={() => setVersion((v) => v + 1)}>
          Refresh
        </button>
      </section>
      <Ledger version={version} />
      <Payouts version={version} />
    </section>
  );
}

function Ledger({ version }: { version: number }) {
  const pages = usePages();
  const list = useLoad(
    () => call(api.GET("/v1/sellers/{sellerId}/ledger", { params: { path: { sellerId: "me" }, query: { pageSize: LEDGER_PAGE, pageToken: pages.pageToken } } })),
    [pages.pageToken, version],
  );
  const entries = list.data?.entries ?? [];
  return (
    <section aria-labelledby="ledger-heading">
      <h2 id="ledger-heading">Ledger</h2>
      <ErrorNote error={list.error} />
      {list.loading && !list.data ? <Status>Loading your ledger…</Status> : null}
      {list.data && entries.length === 0 ? <p>No entries yet.</p> : null}
      {entries.length > 0 ? (
        <table aria-label="Ledger">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What</th>
              <th scope="col">Amount</th>
              <th scope="col">Order or payout</th>
              <th scope="col">Available from</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.entryId} data-kind={e.kind}>
                <td>{dateTime(e.createTime)}</td>
                <td>{kindWords(e.kind)}</td>
                <td className="money">{signedMoney(e.amount)}</td>
                <td>{e.orderId ? <Link href={`/orders/${e.orderId}`}>Order {e.orderId}</Link> : e.payoutId ? `Payout ${e.payoutId}` : ""}</td>
                <td>{dateTime(e.availableTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager label="Pages of your ledger" atFirst={pages.first} nextPageToken={list.data?.nextPageToken} onPrevious={pages.previous} onNext={pages.next} />
    </section>
  );
}

function Payouts({ version }: { version: number }) {
  const pages = usePages();
  const list = useLoad(
    () => call(api.GET("/v1/sellers/{sellerId}/payouts", { params: { path: { sellerId: "me" }, query: { pageSize: PAYOUT_PAGE, pageToken: pages.pageToken } } })),
    [pages.pageToken, version],
  );
  const payouts = list.data?.payouts ?? [];
  return (
    <section aria-labelledby="payouts-heading">
      <h2 id="payouts-heading">Payouts</h2>
      <ErrorNote error={list.error} />
      {list.loading && !list.data ? <Status>Loading your payouts…</Status> : null}
      {list.data && payouts.length === 0 ? <p>No payouts yet.</p> : null}
      {payouts.length > 0 ? (
        <table aria-label="Your payouts">
          <thead>
            <tr>
              <th scope="col">Paid</th>
              <th scope="col">Amount</th>
              <th scope="col">Sales settled before</th>
              <th scope="col">Payout</th>
            </tr>
          </thead>
          <tbody>
            {payouts.map((p) => (
              <tr key={p.payoutId} data-payout-id={p.payoutId}>
                <td>{dateTime(p.createTime)}</td>
                <td>
                  <Money value={p.amount} />
                </td>
                <td>{dateTime(p.settledBefore)}</td>
                <td>{p.payoutId}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager label="Pages of your payouts" atFirst={pages.first} nextPageToken={list.data?.nextPageToken} onPrevious={pages.previous} onNext={pages.next} />
    </section>
  );
}
