// The layout and the routes. Each area of the marketplace is a module of its own
// (catalog, checkout, orders, account, seller, admin); the areas issue 15 adds
// (returns, payouts, "my listings") plug in as modules and routes here.
import { lazy, Suspense, useEffect, type FormEvent, type ReactNode } from "react";
import { ForgotPassword, SignIn, SignUp } from "../auth/pages";
import { useSession } from "../auth/session";
import { Home, ProductPage, Search } from "../catalog/pages";
import { basket, useBasket } from "../checkout/basket";
import { BasketPage, Checkout } from "../checkout/pages";
import { OrderHistory, OrderPage } from "../orders/pages";
import { Status } from "../ui/kit";
import { Link, match, navigate, useLocation, type Location } from "./router";

// The console screens load only for sellers and admins: buyers never download them.
const Console = lazy(() => import("./Console"));

export function App() {
  const location = useLocation();
  return (
    <>
      <a className="skip" href="#main">
        Skip to the content
      </a>
      <Header />
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Status>Loading…</Status>}>{route(location)}</Suspense>
      </main>
      <footer>
        <a href="/docs">API reference</a>
      </footer>
    </>
  );
}

function Header() {
  const { user, isSeller, isAdmin, signOut } = useSession();
  const { cart } = useBasket();
  const count = cart?.totalQuantity ?? 0;
  const userId = user?.userId;
  // The basket is the signed-in buyer's cart on the server: read it at sign-in, drop it at sign-out.
  useEffect(() => {
    if (userId) void basket.load();
    else basket.forget();
  }, [userId]);
  const search = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const query = String(new FormData(event.currentTarget).get("query") ?? "").trim();
    navigate(`/search?query=${encodeURIComponent(query)}`);
  };
  return (
    <header>
      <nav aria-label="Main">
        <Link href="/" className="brand">
          Marketplace
        </Link>
        <form role="search" onSubmit={search} className="searchbox">
          <label htmlFor="q" className="visually-hidden">
            Search products
          </label>
          <input id="q" name="query" type="search" placeholder="Search products" />
          <button type="submit">Search</button>
        </form>
        <Link href="/basket" aria-label={`Basket, ${count} items`}>
          Basket ({count})
        </Link>
        {user ? (
          <>
            <Link href="/orders">Orders</Link>
            <Link href="/wishlist">Wishlist</Link>
            <Link href="/addresses">Addresses</Link>
            <Link href="/account">Account</Link>
            {isSeller ? <Link href="/sell">Sell</Link> : null}
            {isAdmin ? <Link href="/admin/users">Admin</Link> : null}
            <button type="button" className="link" onClick={() => void signOut().then(() => navigate("/"))}>
              Sign out {user.displayName || user.username}
            </button>
          </>
        ) : (
          <>
            <Link href="/signin">Sign in</Link>
            <Link href="/signup">Sign up</Link>
          </>
        )}
      </nav>
    </header>
  );
}

function SignedIn({ children }: { children: ReactNode }) {
  const { user, loading } = useSession();
  const location = useLocation();
  if (loading) return <Status>Loading…</Status>;
  if (!user) return <SignIn next={location.path + window.location.search} />;
  return <>{children}</>;
}

function route(location: Location): ReactNode {
  const { path } = location;
  let params: Record<string, string> | null;
  if (path === "/") return <Home />;
  if (path === "/search") return <Search location={location} />;
  if ((params = match("/products/:id", path))) return <ProductPage productId={params.id ?? ""} />;
  if (path === "/signin") return <SignIn next={location.query.get("next") ?? "/"} />;
  if (path === "/signup") return <SignUp />;
  if (path === "/signin/forgot") return <ForgotPassword />;
  if (path === "/basket") return <SignedIn><BasketPage /></SignedIn>;
  if (path === "/basket/checkout") return <SignedIn><Checkout /></SignedIn>;
  if (path === "/orders") return <SignedIn><OrderHistory /></SignedIn>;
  if ((params = match("/orders/:id", path))) return <SignedIn><OrderPage orderId={params.id ?? ""} /></SignedIn>;
  if (path === "/wishlist" || path === "/addresses" || path === "/account") return <SignedIn><Console location={location} /></SignedIn>;
  // Shown after the account is deleted, when the tab is already signed out.
  if (path === "/account/deleted") return <Console location={location} />;
  if (path.startsWith("/sell") || path.startsWith("/admin")) return <SignedIn><Console location={location} /></SignedIn>;
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        <Link href="/">Back to the shop</Link>
      </p>
    </section>
  );
}
