// The seller's returns: every return of their lines across their orders (GET
// /v1/sellers/me/returns, newest first), to approve or reject with a note for the buyer, and
// to mark received (which refunds the buyer).
import { useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { Link } from "../app/router";
import { ErrorNote, Money, Status, dateTime, useAction, useLoad } from "../ui/kit";
import { itemsText, returnStateWords, type Return } from "./returns";

// A page holds up to 100 returns; a seller with more sees the newest 500 here.
const MAX_PAGES = 5;

async function sellerReturns(): Promise<Return[]> {
  const found: Return[] = [];
  let pageToken = "";
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const answer = await call(
      api.GET("/v1/sellers/{sellerId}/returns", {
        params: { path: { sellerId: "me" }, query: { pageSize: 100, pageToken } },
      }),
    );
    found.push(...(answer.returns ?? []));
    pageToken = answer.nextPageToken ?? "";
    if (!pageToken) break;
  }
  return found;
}

const GROUPS: { title: string; states: string[]; empty: string }[] = [
  { title: "To decide", states: ["RETURN_STATE_REQUESTED"], empty: "No return waits for your decision." },
  { title: "Coming back to you", states: ["RETURN_STATE_APPROVED", "RETURN_STATE_RECEIVED"], empty: "No approved return is on its way." },
  { title: "Done", states: ["RETURN_STATE_REFUNDED", "RETURN_STATE_REJECTED"], empty: "No finished returns yet." },
];

export function SellerReturns() {
  const list = useLoad(sellerReturns, []);
  // Decisions update the page at once; the next load brings the list back in line.
  const [changed, setChanged] = useState<Record<string, Return>>({});
  const returns = (list.data ?? []).map((r) => changed[r.returnId ?? ""] ?? r);
  const update = (r: Return) => setChanged((c) => ({ ...c, [r.returnId ?? ""]: r }));
  return (
    <section>
      <h1>Returns</h1>
      <ErrorNote error={list.error} />
      {!list.data && !list.error ? <Status>Loading your returns…</Status> : null}
      {list.data
        ? GROUPS.map((g) => {
            const shown = returns.filter((r) => g.states.includes(r.state ?? ""));
            return (
              <section key={g.title} aria-label={g.title}>
                <h2>{g.title}</h2>
                {shown.length === 0 ? <p className="muted">{g.empty}</p> : shown.map((r) => <ReturnCard key={r.returnId} value={r} onChange={update} />)}
              </section>
            );
          })
        : null}
      <button
        type="button"
        className="secondary"
        onClick={() => {
          setChanged({});
          list.reload();
        }}
      >
        Refresh
      </button>
    </section>
  );
}

type Verb = "approve" | "reject" | "receive";

function ReturnCard({ value, onChange }: { value: Return; onChange: (r: Return) => void }) {
  const returnId = value.returnId ?? "";
  const [missing, setMissing] = useState(false);
  const act = useAction(async (verb: Verb, reason: string) => {
    const path = { returnId };
    const done =
      verb === "approve"
        ? await call(api.POST("/v1/returns/{returnId}:approve", { params: { path }, body: { reason } }))
        : verb === "reject"
          ? await call(api.POST("/v1/returns/{returnId}:reject", { params: { path }, body: { reason } }))
          : await call(api.POST("/v1/returns/{returnId}:receive", { params: { path }, body: {} }));
    onChange(done);
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const submitter = (event.nativeEvent as SubmitEvent).submitter as HTMLButtonElement | null;
    const verb = (submitter?.value ?? "approve") as Verb;
    const reason = String(new FormData(event.currentTarget).get("note") ?? "").trim();
    // The API asks a reason for a refusal: say so before sending.
    if (verb === "reject" && !reason) {
      setMissing(true);
      return;
    }
    setMissing(false);
    void act.run(verb, reason);
  };
  const state = value.state ?? "";
  const noteId = `note-${returnId}`;
  return (
    <form onSubmit={submit} className="card ship" aria-label={`Return of ${itemsText(value)}`} data-return-id={returnId}>
      <h3>
        {itemsText(value)} · <Money value={value.itemsTotal} />
      </h3>
      <p>
        Order <Link href={`/orders/${value.orderId}`}>{value.orderId}</Link>, asked {dateTime(value.createTime)}. Buyer's reason: {value.reason}
      </p>
      <p>
        State:{" "}
        <strong data-testid="return-state" data-state={state}>
          {returnStateWords(state)}
        </strong>
        {value.decisionReason ? <span className="muted"> · Your note: {value.decisionReason}</span> : null}
        {state === "RETURN_STATE_REFUNDED" ? (
          <>
            {" "}
            · refunded <Money value={value.refundAmount} />
          </>
        ) : null}
      </p>
      {value.refundFailure ? <p className="note">The refund did not go through: {value.refundFailure}. Mark it received again to retry.</p> : null}
      {state === "RETURN_STATE_REQUESTED" ? (
        <>
          <label className="field">
            <span>Note for the buyer (required to reject)</span>
            <textarea name="note" rows={2} maxLength={500} aria-invalid={missing || undefined} aria-describedby={missing ? `${noteId}-missing` : undefined} />
          </label>
          {missing ? (
            <div className="error" role="alert" id={`${noteId}-missing`}>
              <p>Say why you reject the return: the buyer will read it.</p>
            </div>
          ) : null}
          <p className="actions">
            <button type="submit" name="verb" value="approve" disabled={act.busy}>
              Approve
            </button>
            <button type="submit" name="verb" value="reject" className="danger" disabled={act.busy}>
              Reject
            </button>
          </p>
        </>
      ) : null}
      {state === "RETURN_STATE_APPROVED" || (state === "RETURN_STATE_RECEIVED" && value.refundFailure) ? (
        <button type="submit" name="verb" value="receive" disabled={act.busy}>
          {state === "RETURN_STATE_APPROVED" ? "Mark as received and refund" : "Retry the refund"}
        </button>
      ) : null}
      <ErrorNote error={act.error} />
    </form>
  );
}
