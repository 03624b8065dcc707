// Sign in, sign up and the password-reset request. The mailed links (verify, reset) open the
// edge's own pages at /verify-email and /reset-password, which link back here.
import { useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { Link, navigate } from "../app/router";
import { ErrorNote, Field, Status, useAction } from "../ui/kit";
import { useSession } from "./session";
import { tokens } from "./tokens";

export function SignIn({ next }: { next: string }) {
  const { signIn } = useSession();
  const action = useAction(async (email: string, password: string) => {
    await signIn(email, password);
    return true;
  });
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    if (await action.run(String(form.get("email")), String(form.get("password")))) navigate(next || "/");
  };
  return (
    <section className="narrow">
      <h1>Sign in</h1>
      {tokens.sessionEnded() ? (
        <p className="note" role="status">
          Your session ended; please sign in again.
        </p>
      ) : null}
      <form onSubmit={submit} aria-label="Sign in">
        <Field label="Email" name="email" type="email" autoComplete="email" required />
        <Field label="Password" name="password" type="password" autoComplete="current-password" required />
        <ErrorNote error={action.error} />
        <button type="submit" disabled={action.busy}>
          Sign in
        </button>
      </form>
      <p>
        New here? <Link href="/signup">Create an account</Link> · <Link href="/signin/forgot">Forgot your password?</Link>
      </p>
    </section>
  );
}

export function SignUp() {
  const [sentTo, setSentTo] = useState("");
  const action = useAction(async (body: { email: string; username: string; password: string; displayName: string }) => {
    await call(api.POST("/v1/users", { body }));
    return body.email;
  });
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = await action.run({
      email: String(form.get("email")),
      username: String(form.get("username")),
      password: String(form.get("password")),
      displayName: String(form.get("displayName")),
    });
    if (email) setSentTo(email);
  };
  if (sentTo) {
    return (
      <section className="narrow">
        <h1>Check your mailbox</h1>
        <Status>
          We sent a link to {sentTo}. Open it to verify your email address, then <Link href="/signin">sign in</Link>.
        </Status>
      </section>
    );
  }
  return (
    <section className="narrow">
      <h1>Create an account</h1>
      <form onSubmit={submit} aria-label="Create an account">
        <Field label="Email" name="email" type="email" autoComplete="email" required />
        <Field label="Username" name="username" autoComplete="username" required minLength={3} maxLength={32} pattern="[A-Za-z0-9_\-]+" hint="3 to 32 letters, digits, _ or -" />
        <Field label="Your name" name="displayName" autoComplete="name" />
        <Field label="Password" name="password" type="password" autoComplete="new-password" required minLength={10} hint="At least 10 characters" />
        <ErrorNote error={action.error} />
        <button type="submit" disabled={action.busy}>
          Create account
        </button>
      </form>
    </section>
  );
}

export function ForgotPassword() {
  const [sent, setSent] = useState(false);
  const action = useAction(async (email: string) => call(api.POST("/v1/auth/password:requestReset", { body: { email } })));
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const email = String(new FormData(event.currentTarget).get("email"));
    if ((await action.run(email)) !== undefined) setSent(true);
  };
  return (
    <section className="narrow">
      <h1>Reset your password</h1>
      {sent ? (
        <Status>If an account has this address, a reset link is on its way. The link opens a page to choose a new password.</Status>
      ) : (
        <form onSubmit={submit} aria-label="Reset your password">
          <Field label="Email" name="email" type="email" autoComplete="email" required />
          <ErrorNote error={action.error} />
          <button type="submit" disabled={action.busy}>
            Send the reset link
          </button>
        </form>
      )}
    </section>
  );
}
