// The buyer's account: wishlist and address book.
import { api, call } from "../api/client";
import { useSession } from "../auth/session";
import { AddressForm, oneLine } from "../checkout/pages";
import { ProductGrid } from "../catalog/pages";
import { ErrorNote, Status, useAction, useLoad } from "../ui/kit";

export function Wishlist() {
  const { user } = useSession();
  const userId = user?.userId ?? "me";
  const list = useLoad(async () => {
    const items = await call(api.GET("/v1/users/{userId}/wishlist", { params: { path: { userId }, query: { pageSize: 50 } } }));
    const ids = (items.items ?? []).map((i) => i.productId);
    if (!ids.length) return [];
    return (await call(api.GET("/v1/products:batchGet", { params: { query: { productIds: ids } } }))).products ?? [];
  }, [userId]);
  const remove = useAction(async (productId: string) => {
    await call(api.DELETE("/v1/users/{userId}/wishlist/{productId}", { params: { path: { userId, productId } } }));
    list.reload();
  });
  return (
    <section>
      <h1>Your wishlist</h1>
      <ErrorNote error={list.error ?? remove.error} />
      {list.data?.length === 0 ? <p>Nothing saved yet.</p> : null}
      <ProductGrid products={list.data ?? []} />
      {list.data?.map((p) => (
        <button key={p.productId} type="button" className="link" onClick={() => void remove.run(p.productId ?? "")}>
          Remove {p.title} from the wishlist
        </button>
      ))}
    </section>
  );
}

export function Addresses() {
  const { user } = useSession();
  const userId = user?.userId ?? "me";
  const book = useLoad(() => call(api.GET("/v1/users/{userId}/addresses", { params: { path: { userId } } })), [userId]);
  const remove = useAction(async (addressId: string) => {
    await call(api.DELETE("/v1/users/{userId}/addresses/{addressId}", { params: { path: { userId, addressId } } }));
    book.reload();
  });
  return (
    <section>
      <h1>Your addresses</h1>
      <ErrorNote error={book.error ?? remove.error} />
      {!book.data ? <Status>Loading…</Status> : null}
      <ul>
        {book.data?.addresses?.map((a) => (
          <li key={a.addressId}>
            {oneLine(a)} {a.isDefaultShipping ? <span className="badge">Default</span> : null}{" "}
            <button type="button" className="link" onClick={() => void remove.run(a.addressId ?? "")}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <AddressForm userId={userId} onSaved={() => book.reload()} />
    </section>
  );
}
