// The session's tokens. The access token lives in memory only; the single-use refresh token
// is kept for this tab (sessionStorage) so a reload does not sign out (web/README.md says why
// that trade is taken). Refreshes are serialised: two concurrent rotations of one refresh
// token would look like a replay, and the user service ends the session on a reused refresh
// token. A refresh the server refuses signs out: tokens gone, and the screens told why.

const REFRESH_KEY = "marketplace.refresh";
// Rotate this long before the access token expires.
const EARLY_MS = 60_000;

interface TokenPair {
  accessToken?: string;
  refreshToken?: string;
  expiresIn?: number;
}

type Listener = () => void;

class Tokens {
  private access = "";
  private expiresAt = 0;
  private inflight: Promise<boolean> | null = null;
  private listeners = new Set<Listener>();
  // Bumped by every sign-in and sign-out: a rotation that started before one of them must
  // not bring its tokens back (signing out while a refresh is in flight stays signed out).
  private generation = 0;
  // The server refused the refresh token (expired, revoked, reused): the session ended
  // without the person asking, and the sign-in screen says so.
  private ended = false;

  signedIn(): boolean {
    return Boolean(this.access || sessionStorage.getItem(REFRESH_KEY));
  }

  /** True when the server ended the session (a refused refresh), until the next sign-in. */
  sessionEnded(): boolean {
    return this.ended;
  }

  accept(pair: TokenPair): void {
    this.generation += 1;
    this.ended = false;
    this.store(pair);
  }

  private store(pair: TokenPair): void {
    this.access = pair.accessToken ?? "";
    this.expiresAt = Date.now() + (pair.expiresIn ?? 900) * 1000;
    if (pair.refreshToken) sessionStorage.setItem(REFRESH_KEY, pair.refreshToken);
    this.emit();
  }

  clear(ended = false): string | null {
    const refresh = sessionStorage.getItem(REFRESH_KEY);
    this.generation += 1;
    this.ended = ended;
    this.access = "";
    this.expiresAt = 0;
    sessionStorage.removeItem(REFRESH_KEY);
    this.emit();
    return refresh;
  }

  /** The access token, rotated first when it is about to expire; "" when signed out. */
  async fresh(): Promise<string> {
    if (this.access && Date.now() < this.expiresAt - EARLY_MS) return this.access;
    if (!sessionStorage.getItem(REFRESH_KEY)) return this.access;
    await this.refresh();
    return this.access;
  }

  /** Rotate the refresh token; false (and signed out) when the session has ended. */
  refresh(): Promise<boolean> {
    this.inflight ??= this.rotate().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async rotate(): Promise<boolean> {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY);
    if (!refreshToken) return false;
    const generation = this.generation;
    try {
      // Plain fetch: the generated client's fetch would come back here for a token.
      const response = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refreshToken }),
      });
      if (generation !== this.generation) {
        // Signed out (or in again) meanwhile: end the session this rotation made, keep ours.
        if (response.ok) void logout(((await response.json()) as TokenPair).refreshToken);
        return false;
      }
      if (!response.ok) {
        // Refused (4xx): the session is over, sign out. A 5xx, a 429 (the edge's rate limit)
        // or no answer says nothing about the session: keep the token, the next call retries.
        if (response.status < 500 && response.status !== 429) this.clear(true);
        return false;
      }
      this.store((await response.json()) as TokenPair);
      return true;
    } catch {
      return false;
    }
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}

/** Ends a session on the server, best effort (signing out never waits on or fails for it). */
export async function logout(refreshToken: string | undefined | null): Promise<void> {
  if (!refreshToken) return;
  await fetch("/v1/auth/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refreshToken }),
  }).catch(() => undefined);
}

export const tokens = new Tokens();
