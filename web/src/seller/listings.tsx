// "My listings": the seller's own products in every state, drafts included
// (GET /v1/sellers/me/products), filtered by state, category and low stock, page by page.
import { useState, type FormEvent } from "react";
import { api, call, type Schemas } from "../api/client";
import { Link } from "../app/router";
import { categoryTree, type CategoryNode } from "../catalog/categories";
import { ErrorNote, Pager, Field, Money, Status, dateTime, enumWords, useLoad } from "../ui/kit";

type ProductState = Schemas["ProductState"];

const STATES: [ProductState, string][] = [
  ["PRODUCT_STATE_DRAFT", "Drafts"],
  ["PRODUCT_STATE_PUBLISHED", "Published"],
  ["PRODUCT_STATE_UNPUBLISHED", "Unpublished"],
  ["PRODUCT_STATE_ARCHIVED", "Archived"],
];

interface Filters {
  state: ProductState | "";
  category: string;
  maxAvailable: string;
}

const PAGE_SIZE = 20;

function flatten(nodes: readonly CategoryNode[], depth = 0): { id: string; label: string }[] {
  return nodes.flatMap((n) => [{ id: n.categoryId ?? "", label: `${"— ".repeat(depth)}${n.displayName ?? n.categoryId}` }, ...flatten(n.children, depth + 1)]);
}

export function MyListings() {
  const [filters, setFilters] = useState<Filters>({ state: "", category: "", maxAvailable: "" });
  // The tokens of the pages before this one: "Previous" pops, "Next" pushes.
  const [tokens, setTokens] = useState<string[]>([]);
  const pageToken = tokens[tokens.length - 1];
  const tree = useLoad(() => categoryTree(), []);
  const list = useLoad(
    () =>
      call(
        api.GET("/v1/sellers/{sellerId}/products", {
          params: {
            path: { sellerId: "me" },
            query: {
              states: filters.state ? [filters.state] : undefined,
              category: filters.category || undefined,
              maxAvailable: filters.maxAvailable || undefined,
              pageSize: PAGE_SIZE,
              pageToken,
            },
          },
        }),
      ),
    [filters, pageToken],
  );
  const apply = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    // A page token belongs to its filters: new filters start at the first page.
    setTokens([]);
    setFilters({ state: String(data.get("state") ?? "") as Filters["state"], category: String(data.get("category") ?? ""), maxAvailable: String(data.get("maxAvailable") ?? "").trim() });
  };
  const products = list.data?.products ?? [];
  return (
    <section aria-labelledby="my-listings">
      <h2 id="my-listings">Your listings</h2>
      <form onSubmit={apply} className="inline" aria-label="Filter your listings">
        <label className="field">
          <span>State</span>
          <select name="state" defaultValue={filters.state}>
            <option value="">Every state</option>
            {STATES.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Category</span>
          <select name="category" defaultValue={filters.category}>
            <option value="">Every category</option>
            {flatten(tree.data ?? []).map((c) => (
              <option key={c.id} value={c.id}>
                {c.label}
              </option>
            ))}
          </select>
        </label>
        <Field label="At most this many in stock" name="maxAvailable" type="number" min={0} defaultValue={filters.maxAvailable} hint="Empty for any stock" />
        <button type="submit">Show</button>
      </form>
      <ErrorNote error={list.error} />
      {list.loading && !list.data ? <Status>Loading your listings…</Status> : null}
      {list.data && products.length === 0 ? <p>No listings match.</p> : null}
      {products.length > 0 ? (
        <table aria-label="Your listings">
          <thead>
            <tr>
              <th scope="col">Listing</th>
              <th scope="col">State</th>
              <th scope="col">Price</th>
              <th scope="col">In stock</th>
              <th scope="col">Changed</th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr key={p.productId} data-product-id={p.productId} data-state={p.state}>
                <td>
                  <Link href={`/sell/products/${p.productId}`}>{p.title}</Link>
                </td>
                <td>{enumWords(p.state, "PRODUCT_STATE_")}</td>
                <td>
                  <Money value={p.effectivePrice ?? p.listPrice} />
                </td>
                <td>{p.stockAvailable ?? "0"}</td>
                <td>{dateTime(p.updateTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager
        label="Pages of your listings"
        atFirst={!tokens.length}
        nextPageToken={list.data?.nextPageToken}
        onPrevious={() => setTokens(tokens.slice(0, -1))}
        onNext={(token) => setTokens([...tokens, token])}
      />
    </section>
  );
}
