// Small shared pieces: money, errors in words, labelled fields, async state.
import { useCallback, useEffect, useState, type InputHTMLAttributes, type ReactNode } from "react";
import type { Money as MoneyValue } from "../api/client";
import { ApiError, type ApiProblem } from "../api/errors";

export function moneyAmount(money: MoneyValue | undefined): number {
  if (!money) return 0;
  return Number(money.units ?? 0) + (money.nanos ?? 0) / 1e9;
}

export function formatMoney(money: MoneyValue | undefined): string {
  if (!money?.currencyCode) return "";
  return new Intl.NumberFormat("en", { style: "currency", currency: money.currencyCode }).format(moneyAmount(money));
}

export function Money({ value }: { value: MoneyValue | undefined }) {
  return <span className="money">{formatMoney(value)}</span>;
}

/** Dollars typed by a person, as google.type.Money. */
export function toMoney(text: string, currencyCode = "USD"): MoneyValue {
  const cents = Math.round(Number(text) * 100);
  return { currencyCode, units: String(Math.trunc(cents / 100)), nanos: (cents % 100) * 10_000_000 };
}

export function problemOf(error: unknown): ApiProblem {
  if (error instanceof ApiError) return error.problem;
  return { status: 0, reason: "", message: "Something went wrong; please try again.", fields: [] };
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const problem = problemOf(error);
  return (
    <div className="error" role="alert" data-reason={problem.reason || undefined}>
      <p>{problem.message}</p>
      {problem.fields.length > 0 && (
        <ul>
          {problem.fields.map((f) => (
            <li key={f.field + f.description}>
              {f.field ? <strong>{humanField(f.field)}: </strong> : null}
              {f.description}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function humanField(field: string): string {
  const last = field.split(".").pop() ?? field;
  return last.replace(/_/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

export function Field({ label, hint, ...input }: InputHTMLAttributes<HTMLInputElement> & { label: string; hint?: string }) {
  return (
    <label className="field">
      <span>{label}</span>
      <input {...input} />
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

export function Status({ children }: { children: ReactNode }) {
  return (
    <p role="status" className="status">
      {children}
    </p>
  );
}

/** Load something on mount (and when `deps` change); `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    run().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [run, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Run an action with a busy flag and its error kept for display. */
export function useAction<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (...args: A): Promise<R | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await action(...args);
    } catch (caught) {
      setError(caught);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, setError };
}

export function Stars({ rating, count }: { rating: number | undefined; count?: number }) {
  const value = rating ?? 0;
  return (
    <span className="stars" aria-label={`Rated ${value.toFixed(1)} out of 5${count !== undefined ? ` from ${count} reviews` : ""}`}>
      {"★".repeat(Math.round(value))}
      {"☆".repeat(5 - Math.round(value))}
      {count !== undefined ? <span className="muted"> ({count})</span> : null}
    </span>
  );
}

export function enumWords(value: string | undefined, prefix: string): string {
  if (!value) return "";
  const words = value.replace(prefix, "").replace(/_/g, " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function dateTime(value: string | undefined): string {
  return value ? new Date(value).toLocaleString() : "";
}

// "Previous" and "Next" for a list read in pages: `atFirst` disables Previous, a missing
// `nextPageToken` disables Next, which hands the token on.
export function Pager({
  label,
  atFirst,
  nextPageToken,
  onPrevious,
  onNext,
}: {
  label: string;
  atFirst: boolean;
  nextPageToken: string | undefined;
  onPrevious: () => void;
  onNext: (token: string) => void;
}) {
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={atFirst} onClick={onPrevious}>
        Previous
      </button>
      <button type="button" disabled={!nextPageToken} onClick={() => onNext(nextPageToken ?? "")}>
        Next
      </button>
    </nav>
  );
}
