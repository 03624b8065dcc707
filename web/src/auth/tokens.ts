// The session's tokens. The access token lives in memory only; the single-use refresh token
// is kept for this tab (sessionStorage) so a reload does not sign out. Refreshes are
// serialised: two concurrent rotations of one refresh token would look like a replay, and the
// user service ends the session on a reused refresh token.

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

  signedIn(): boolean {
    return Boolean(this.access || sessionStorage.getItem(REFRESH_KEY));
  }

  accept(pair: TokenPair): void {
    this.access = pair.accessToken ?? "";
    this.expiresAt = Date.now() + (pair.expiresIn ?? 900) * 1000;
    if (pair.refreshToken) sessionStorage.setItem(REFRESH_KEY, pair.refreshToken);
    this.emit();
  }

  clear(): string | null {
    const refresh = sessionStorage.getItem(REFRESH_KEY);
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
    try {
      // Plain fetch: the generated client's fetch would come back here for a token.
      const response = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refreshToken }),
      });
      if (!response.ok) {
        if (response.status < 500) this.clear();
        return false;
      }
      this.accept((await response.json()) as TokenPair);
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

export const tokens = new Tokens();
