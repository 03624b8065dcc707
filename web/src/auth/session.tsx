// Who is signed in: the tokens plus the account (GET /v1/users/me), for every screen.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, call, type User } from "../api/client";
import { logout, tokens } from "./tokens";

interface Session {
  user: User | null;
  loading: boolean;
  isSeller: boolean;
  isAdmin: boolean;
  signIn(email: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  reload(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(tokens.signedIn());

  const reload = useCallback(async () => {
    if (!tokens.signedIn()) {
      setUser(null);
      setLoading(false);
      return;
    }
    try {
      setUser(await call(api.GET("/v1/users/{userId}", { params: { path: { userId: "me" } } })));
    } catch {
      setUser(null);
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void reload();
    // A session ended elsewhere (refresh refused) signs this tab out.
    return tokens.subscribe(() => {
      if (!tokens.signedIn()) setUser(null);
    });
  }, [reload]);

  const signIn = useCallback(
    async (email: string, password: string) => {
      tokens.accept(await call(api.POST("/v1/auth/login", { body: { email, password } })));
      await reload();
    },
    [reload],
  );

  const signOut = useCallback(async () => {
    const refreshToken = tokens.clear();
    setUser(null);
    await logout(refreshToken);
  }, []);

  const value = useMemo<Session>(() => {
    const roles = user?.roles ?? [];
    return {
      user,
      loading,
      isSeller: roles.includes("ROLE_SELLER") || roles.includes("ROLE_ADMIN"),
      isAdmin: roles.includes("ROLE_ADMIN"),
      signIn,
      signOut,
      reload,
    };
  }, [user, loading, signIn, signOut, reload]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}
