// The screens loaded on demand: account pages, the seller console and the admin console.
import { Addresses, Wishlist } from "../account/pages";
import { AccountDeleted, YourData } from "../account/privacy";
import { AdminCategories, AdminReviews, AdminUsers } from "../admin/pages";
import { useSession } from "../auth/session";
import { OrdersToShip, SalesChart, SellerHome } from "../seller/console";
import { EditListing, NewListing } from "../seller/listing";
import { AdminPayouts } from "../payouts/AdminPayouts";
import { SellerPayouts } from "../payouts/SellerPayouts";
import { AdminTaxRates } from "../pricing/AdminTaxRates";
import { SellerShipping } from "../pricing/SellerShipping";
import { SellerReturns } from "../returns/SellerReturns";
import { Link, match, type Location } from "./router";

export default function Console({ location }: { location: Location }) {
  const { isSeller, isAdmin } = useSession();
  const { path } = location;
  if (path === "/wishlist") return <Wishlist />;
  if (path === "/addresses") return <Addresses />;
  if (path === "/account") return <YourData />;
  if (path === "/account/deleted") return <AccountDeleted />;
  if (path.startsWith("/sell")) {
    if (!isSeller) return <p role="alert">This part is for sellers.</p>;
    if (path === "/sell") return <SellerHome />;
    if (path === "/sell/products/new") return <NewListing />;
    const params = match("/sell/products/:id", path);
    if (params) return <EditListing productId={params.id ?? ""} />;
    if (path === "/sell/orders") return <OrdersToShip />;
    if (path === "/sell/returns") return <SellerReturns />;
    if (path === "/sell/sales") return <SalesChart title="Your sales" />;
    if (path === "/sell/payouts") return <SellerPayouts />;
    if (path === "/sell/shipping") return <SellerShipping />;
  }
  if (path.startsWith("/admin")) {
    if (!isAdmin) return <p role="alert">This part is for admins.</p>;
    return (
      <>
        <nav aria-label="Admin" className="subnav">
          <Link href="/admin/users">Users</Link>
          <Link href="/admin/categories">Categories</Link>
          <Link href="/admin/reviews">Reviews</Link>
          <Link href="/admin/sales">Sales</Link>
          <Link href="/admin/payouts">Payouts</Link>
          <Link href="/admin/taxRates">Tax rates</Link>
        </nav>
        {path === "/admin/users" ? <AdminUsers /> : null}
        {path === "/admin/categories" ? <AdminCategories /> : null}
        {path === "/admin/reviews" ? <AdminReviews /> : null}
        {path === "/admin/payouts" ? <AdminPayouts /> : null}
        {path === "/admin/taxRates" ? <AdminTaxRates /> : null}
        {path === "/admin/sales" ? <SalesChart title="Sales over time (all sellers)" days={30} /> : null}
      </>
    );
  }
  return <h1>Page not found</h1>;
}
