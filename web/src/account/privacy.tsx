// "Your data" on the account page: a download of everything the marketplace holds about the
// person (GET /v1/users/me:export, offered as a JSON file through a Blob link), and deleting
// the account for good (DELETE /v1/users/me with the current password), after which the tab
// is signed out and says so in words.
import { useEffect, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { Link, navigate } from "../app/router";
import { useSession } from "../auth/session";
import { ErrorNote, Field, useAction } from "../ui/kit";

export function YourData() {
  const { user } = useSession();
  return (
    <section>
      <h1>Your account</h1>
      <p>
        Signed in as <strong>{user?.email}</strong>.
      </p>
      <p className="actions">
        <Link href="/addresses">Addresses</Link>
        <Link href="/wishlist">Wishlist</Link>
        <Link href="/orders">Orders</Link>
      </p>
      <h2>Your data</h2>
      <ExportData />
      <DeleteAccount />
    </section>
  );
}

function ExportData() {
  const [file, setFile] = useState<{ url: string; name: string } | null>(null);
  // The Blob URL holds the whole export in memory: release it when a new one replaces it or
  // the page goes.
  useEffect(() => () => (file ? URL.revokeObjectURL(file.url) : undefined), [file]);
  const prepare = useAction(async () => {
    const data = await call(api.GET("/v1/users/me:export"));
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const day = new Date().toISOString().slice(0, 10);
    setFile({ url: URL.createObjectURL(blob), name: `marketplace-data-${day}.json` });
  });
  return (
    <section aria-labelledby="export-heading">
      <h3 id="export-heading">Download your data</h3>
      <p>One JSON file of everything the marketplace holds about you: your account, addresses, preferences, wishlist, sessions, reviews, listings, orders, returns and basket.</p>
      <button type="button" className="secondary" disabled={prepare.busy} onClick={() => void prepare.run()}>
        {prepare.busy ? "Gathering your data…" : file ? "Gather it again" : "Gather my data"}
      </button>
      <ErrorNote error={prepare.error} />
      {file && !prepare.busy ? (
        <p role="status">
          Your data is ready:{" "}
          <a href={file.url} download={file.name}>
            Download your data ({file.name})
          </a>
        </p>
      ) : null}
    </section>
  );
}

function DeleteAccount() {
  const { signOut } = useSession();
  const [sure, setSure] = useState(false);
  const remove = useAction(async (currentPassword: string) => {
    await call(api.DELETE("/v1/users/me", { body: { currentPassword } }));
    await signOut();
    navigate("/account/deleted", true);
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    void remove.run(String(new FormData(event.currentTarget).get("currentPassword") ?? ""));
  };
  return (
    <section aria-labelledby="delete-heading">
      <h3 id="delete-heading">Delete your account</h3>
      <p>
        This cannot be undone. Your profile, addresses, wishlist, basket and sessions are erased, your reviews stay without your name, and your listings are archived. Your orders are kept
        for the accounts, without your address.
      </p>
      <form onSubmit={submit} aria-label="Delete your account" className="narrow">
        <Field label="Your current password" name="currentPassword" type="password" autoComplete="current-password" required />
        <label className="check">
          <input type="checkbox" checked={sure} onChange={(e) => setSure(e.target.checked)} required /> I understand my account is deleted for good
        </label>
        <ErrorNote error={remove.error} />
        <button type="submit" className="danger" disabled={!sure || remove.busy}>
          {remove.busy ? "Deleting…" : "Delete my account"}
        </button>
      </form>
    </section>
  );
}

export function AccountDeleted() {
  return (
    <section>
      <h1>Your account is deleted</h1>
      <p role="status">Your account and personal data are erased and you are signed out. You cannot sign in with it any more; your email address may be used to sign up again.</p>
      <p>
        <Link href="/">Back to the shop</Link>
      </p>
    </section>
  );
}
