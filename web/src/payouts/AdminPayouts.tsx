// The admin's "Payouts": run payouts (POST /v1/payouts:run, after a confirmation, showing
// what the run paid) and every seller's payouts newest first (GET /v1/sellers/-/payouts).
import { useEffect, useRef, useState } from "react";
import { api, call, type Schemas } from "../api/client";
import { ErrorNote, Pager, Money, Status, dateTime, formatMoney, moneyAmount, useAction, useLoad } from "../ui/kit";
import { usePages, type Payout } from "./payouts";

const PAGE_SIZE = 20;

/** The sellers' names by id (GET /v1/users/{id}, admins only); one that cannot be read shows its id. */
function useSellerNames(ids: string[]): Record<string, string> {
  const unique = [...new Set(ids.filter(Boolean))].sort();
  const key = unique.join(",");
  const names = useLoad(async () => {
    const found: Record<string, string> = {};
    await Promise.all(
      unique.map(async (userId) => {
        try {
          const user = await call(api.GET("/v1/users/{userId}", { params: { path: { userId } } }));
          found[userId] = user.displayName || user.username || user.email || userId;
        } catch {
          // The id is still a correct answer; the name is a convenience.
        }
      }),
    );
    return found;
  }, [key]);
  return names.data ?? {};
}

/** The total of some payouts per currency, in words: "$36.00 and €10.00". */
function totals(payouts: Payout[]): string {
  const sums = new Map<string, number>();
  for (const p of payouts) {
    const code = p.amount?.currencyCode ?? "";
    sums.set(code, (sums.get(code) ?? 0) + Math.round(moneyAmount(p.amount) * 100));
  }
  return [...sums]
    .map(([code, cents]) => formatMoney({ currencyCode: code, units: String(Math.trunc(cents / 100)), nanos: (cents % 100) * 10_000_000 }))
    .join(" and ");
}

export function AdminPayouts() {
  const pages = usePages();
  const list = useLoad(
    () => call(api.GET("/v1/sellers/{sellerId}/payouts", { params: { path: { sellerId: "-" }, query: { pageSize: PAGE_SIZE, pageToken: pages.pageToken } } })),
    [pages.pageToken],
  );
  const [confirming, setConfirming] = useState(false);
  // Keyboard focus follows the swap of "Run payouts" and its confirmation (the focused
  // button is gone otherwise): to "Cancel" when asked, back to "Run payouts" after.
  const runButton = useRef<HTMLButtonElement>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);
  const asked = useRef(false);
  useEffect(() => {
    if (confirming) {
      asked.current = true;
      cancelButton.current?.focus();
    } else if (asked.current) {
      runButton.current?.focus();
    }
  }, [confirming]);
  const [result, setResult] = useState<Schemas["RunPayoutsResponse"] | null>(null);
  const run = useAction(async () => {
    setResult(await call(api.POST("/v1/payouts:run", { body: {} })));
    setConfirming(false);
    // The new payouts are the newest: show the first page again.
    pages.reset();
    list.reload();
  });
  const paid = result?.payouts ?? [];
  const payouts = list.data?.payouts ?? [];
  const names = useSellerNames([...paid, ...payouts].map((p) => p.sellerId ?? ""));
  const seller = (id: string | undefined) => names[id ?? ""] ?? id ?? "";
  return (
    <section>
      <h1>Payouts</h1>
      <section aria-labelledby="run-heading">
        <h2 id="run-heading">Run payouts</h2>
        <p>A run pays every seller their available balance, per currency: sales past the holding period, less commission and refunds. Pending sales wait for a later run.</p>
        {confirming ? (
          <div role="group" aria-labelledby="run-confirm" className="card">
            <p id="run-confirm">
              <strong>Pay out every seller's available balance now?</strong> This cannot be undone.
            </p>
            <p className="actions">
              <button type="button" onClick={() => void run.run()} disabled={run.busy}>
                Yes, pay out now
              </button>
              <button type="button" className="secondary" ref={cancelButton} onClick={() => setConfirming(false)} disabled={run.busy}>
                Cancel
              </button>
            </p>
          </div>
        ) : (
          <button
            type="button"
            ref={runButton}
            onClick={() => {
              setResult(null);
              run.setError(null);
              setConfirming(true);
            }}
          >
            Run payouts
          </button>
        )}
        {run.busy ? <Status>Paying out…</Status> : null}
        <ErrorNote error={run.error} />
        {result ? (
          <div role="status" className="status" aria-label="Payout run result">
            {paid.length === 0 ? (
              <p>Nothing was due: no seller had an available balance. Sales settled before {dateTime(result.settledBefore)} were counted.</p>
            ) : (
              <>
                <p>
                  Paid {paid.length} payout{paid.length === 1 ? "" : "s"}, {totals(paid)} in all (sales settled before {dateTime(result.settledBefore)}).
                </p>
                <ul>
                  {paid.map((p) => (
                    <li key={p.payoutId} data-seller-id={p.sellerId}>
                      {seller(p.sellerId)}: <Money value={p.amount} />
                    </li>
                  ))}
                </ul>
              </>
            )}
          </div>
        ) : null}
      </section>
      <section aria-labelledby="all-payouts-heading">
        <h2 id="all-payouts-heading">All payouts</h2>
        <ErrorNote error={list.error} />
        {list.loading && !list.data ? <Status>Loading payouts…</Status> : null}
        {list.data && payouts.length === 0 ? <p>No payouts yet.</p> : null}
        {payouts.length > 0 ? (
          <table aria-label="All payouts">
            <thead>
              <tr>
                <th scope="col">Paid</th>
                <th scope="col">Seller</th>
                <th scope="col">Amount</th>
                <th scope="col">Sales settled before</th>
                <th scope="col">Run</th>
              </tr>
            </thead>
            <tbody>
              {payouts.map((p) => (
                <tr key={p.payoutId} data-payout-id={p.payoutId} data-seller-id={p.sellerId}>
                  <td>{dateTime(p.createTime)}</td>
                  <td title={p.sellerId}>{seller(p.sellerId)}</td>
                  <td>
                    <Money value={p.amount} />
                  </td>
                  <td>{dateTime(p.settledBefore)}</td>
                  <td>{p.runId}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <Pager label="Pages of payouts" atFirst={pages.first} nextPageToken={list.data?.nextPageToken} onPrevious={pages.previous} onNext={pages.next} />
      </section>
    </section>
  );
}
