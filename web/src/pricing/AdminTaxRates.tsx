// "Tax rates" in the admin console: the platform's tax rate per destination country
// (GET /v1/taxRates), set one (PUT /v1/taxRates/{countryCode}?allowMissing=true, which adds
// or replaces), and delete one after an in-page confirmation (DELETE /v1/taxRates/{countryCode}).
// Rates are basis points in the API and percentages on screen.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { ApiError } from "../api/errors";
import { ErrorNote, Field, Status, dateTime, useAction, useLoad } from "../ui/kit";
import { basisPointsOf, percent } from "./pricing";

export function AdminTaxRates() {
  const list = useLoad(() => call(api.GET("/v1/taxRates", { params: { query: { pageSize: 300 } } })), []);
  const [done, setDone] = useState("");
  const [confirming, setConfirming] = useState("");
  // "Keep it" gives the focus back to the Delete button it replaced, so a keyboard user is
  // where they were.
  const refocus = useRef("");
  const set = useAction(async (countryCode: string, basisPoints: number) => {
    const rate = await call(api.PUT("/v1/taxRates/{countryCode}", { params: { path: { countryCode }, query: { allowMissing: true } }, body: { countryCode, basisPoints } }));
    setDone(`${rate.countryCode} is taxed at ${percent(rate.basisPoints)}.`);
    list.reload();
    return rate;
  });
  const remove = useAction(async (countryCode: string) => {
    await call(api.DELETE("/v1/taxRates/{countryCode}", { params: { path: { countryCode } } }));
    setConfirming("");
    setDone(`The tax rate of ${countryCode} is deleted: it is taxed at zero.`);
    list.reload();
  });
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const countryCode = String(data.get("countryCode") ?? "").trim().toUpperCase();
    const basisPoints = basisPointsOf(String(data.get("percent") ?? ""));
    setDone("");
    if (!Number.isFinite(basisPoints) || basisPoints < 0 || basisPoints > 10_000) {
      set.setError(new ApiError({ status: 400, reason: "", message: "The rate is a percentage from 0 to 100, such as 19 or 7.5.", fields: [] }));
      return;
    }
    if (await set.run(countryCode, basisPoints)) form.reset();
  };
  const rates = list.data?.taxRates ?? [];
  return (
    <section>
      <h1>Tax rates</h1>
      <p className="muted">
        Tax is charged on each seller&apos;s items and shipping, by the country the order ships to. A country without a rate is taxed at zero. A change applies to orders placed after it.
      </p>
      <ErrorNote error={list.error ?? remove.error} />
      {done ? <Status>{done}</Status> : null}
      {list.loading && !list.data ? <Status>Loading the tax rates…</Status> : null}
      {list.data && rates.length === 0 ? <p>No country has a tax rate yet.</p> : null}
      {rates.length > 0 ? (
        <table aria-label="Tax rates">
          <thead>
            <tr>
              <th scope="col">Country</th>
              <th scope="col">Rate</th>
              <th scope="col">Changed</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rates.map((r) => (
              <tr key={r.countryCode} data-country={r.countryCode}>
                <th scope="row">{r.countryCode}</th>
                <td data-testid="rate">{percent(r.basisPoints)}</td>
                <td>{dateTime(r.updateTime)}</td>
                <td>
                  {confirming === r.countryCode ? (
                    <ConfirmDelete countryCode={r.countryCode} busy={remove.busy} onYes={() => void remove.run(r.countryCode)} onNo={() => {
                        refocus.current = r.countryCode;
                        setConfirming("");
                      }}
                    />
                  ) : (
                    <button
                      type="button"
                      className="link"
                      onClick={() => setConfirming(r.countryCode)}
                      ref={(button) => {
                        if (button && refocus.current === r.countryCode) {
                          refocus.current = "";
                          button.focus();
                        }
                      }}
                    >
                      Delete <span className="visually-hidden">the tax rate of {r.countryCode}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <form onSubmit={(e) => void submit(e)} aria-label="Set a tax rate" className="narrow">
        <h2>Add or change a rate</h2>
        <Field label="Country code" name="countryCode" required minLength={2} maxLength={2} pattern="[A-Za-z]{2}" hint="Two letters, such as DE; an existing rate is replaced" />
        <Field label="Rate (%)" name="percent" required type="number" inputMode="decimal" min={0} max={100} step="0.01" hint="For example 19 or 7.5" />
        <ErrorNote error={set.error} />
        <button type="submit" disabled={set.busy}>
          Save the rate
        </button>
      </form>
    </section>
  );
}

/** "Delete?" as a button pair, not window.confirm: keyboard and screen readers reach it, and
 * the focus starts on "Keep it" so a stray Enter deletes nothing. */
function ConfirmDelete({ countryCode, busy, onYes, onNo }: { countryCode: string; busy: boolean; onYes: () => void; onNo: () => void }) {
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => keep.current?.focus(), []);
  return (
    <div role="group" aria-label={`Delete the tax rate of ${countryCode}?`} className="inline">
      <span>Delete the rate of {countryCode}?</span>
      <button type="button" ref={keep} className="secondary" onClick={onNo}>
        Keep it
      </button>
      <button type="button" className="danger" disabled={busy} onClick={onYes}>
        Yes, delete
      </button>
    </div>
  );
}
