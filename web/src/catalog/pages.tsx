// Buyers: the category tree, search with facets, filters, sorting and paging, product pages.
import { useState, type FormEvent } from "react";
import { api, call, type Product } from "../api/client";
import { Link, navigate, type Location } from "../app/router";
import { useSession } from "../auth/session";
import { basket } from "../checkout/basket";
import { ErrorNote, Pager, Money, Stars, Status, dateTime, useAction, useLoad } from "../ui/kit";
import { categoryTree, type CategoryNode } from "./categories";

const SORTS = [
  ["SORT_ORDER_RELEVANCE", "Relevance"],
  ["SORT_ORDER_PRICE_ASCENDING", "Price: low to high"],
  ["SORT_ORDER_PRICE_DESCENDING", "Price: high to low"],
  ["SORT_ORDER_NEWEST", "Newest"],
  ["SORT_ORDER_RATING", "Rating"],
] as const;
type Sort = (typeof SORTS)[number][0];

export function Home() {
  const tree = useLoad(() => categoryTree(), []);
  return (
    <section>
      <h1>Shop by category</h1>
      <ErrorNote error={tree.error} />
      {tree.data ? <CategoryList nodes={tree.data} /> : <Status>Loading the categories…</Status>}
    </section>
  );
}

function CategoryList({ nodes, parent }: { nodes: CategoryNode[]; parent?: string }) {
  return (
    <ul className={parent ? "subcategories" : "categories"}>
      {nodes.map((node) => {
        const query = parent ? `category=${encodeURIComponent(parent)}&subcategory=${encodeURIComponent(node.categoryId ?? "")}` : `category=${encodeURIComponent(node.categoryId ?? "")}`;
        return (
          <li key={node.categoryId}>
            <Link href={`/search?${query}`}>{node.displayName}</Link>
            {node.children.length > 0 && <CategoryList nodes={node.children} parent={node.categoryId} />}
          </li>
        );
      })}
    </ul>
  );
}

export function Search({ location }: { location: Location }) {
  const q = location.query;
  const key = q.toString();
  // Cursor paging: the tokens of the pages before this one, so "Previous" works too.
  const [pages, setPages] = useState<{ key: string; tokens: string[] }>({ key, tokens: [] });
  const tokens = pages.key === key ? pages.tokens : [];
  const pageToken = tokens[tokens.length - 1] ?? "";
  const result = useLoad(
    () =>
      call(
        api.GET("/v1/products", {
          params: {
            query: {
              query: q.get("query") || undefined,
              category: q.get("category") || undefined,
              subcategory: q.get("subcategory") || undefined,
              minPriceMinor: q.get("min") ? String(Math.round(Number(q.get("min")) * 100)) : undefined,
              maxPriceMinor: q.get("max") ? String(Math.round(Number(q.get("max")) * 100)) : undefined,
              attributeFilters: q.getAll("attr").length ? q.getAll("attr") : undefined,
              inStockOnly: q.get("inStock") === "1" || undefined,
              minRating: q.get("minRating") ? Number(q.get("minRating")) : undefined,
              sellerId: q.get("seller") || undefined,
              sortOrder: (q.get("sort") as Sort | null) ?? undefined,
              pageSize: 12,
              pageToken: pageToken || undefined,
            },
          },
        }),
      ),
    [key, pageToken],
  );
  const set = (name: string, value: string | null) => {
    const next = new URLSearchParams(q);
    if (value === null || value === "") next.delete(name);
    else next.set(name, value);
    navigate(`/search?${next.toString()}`);
  };
  const toggleAttr = (filter: string) => {
    const next = new URLSearchParams(q);
    const current = next.getAll("attr");
    next.delete("attr");
    for (const f of current) if (f !== filter) next.append("attr", f);
    if (!current.includes(filter)) next.append("attr", filter);
    navigate(`/search?${next.toString()}`);
  };
  const submitPrice = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const next = new URLSearchParams(q);
    for (const name of ["min", "max", "minRating"]) {
      const value = String(form.get(name) ?? "");
      if (value) next.set(name, value);
      else next.delete(name);
    }
    navigate(`/search?${next.toString()}`);
  };
  const data = result.data;
  return (
    <section className="search">
      <h1>{q.get("query") ? `Results for “${q.get("query")}”` : "Products"}</h1>
      <div className="search-layout">
        <aside aria-label="Filters">
          <form onSubmit={submitPrice} className="filters">
            <fieldset>
              <legend>Price (USD)</legend>
              <label className="field">
                <span>From</span>
                <input name="min" type="number" min="0" step="0.01" defaultValue={q.get("min") ?? ""} />
              </label>
              <label className="field">
                <span>To</span>
                <input name="max" type="number" min="0" step="0.01" defaultValue={q.get("max") ?? ""} />
              </label>
            </fieldset>
            <label className="field">
              <span>Minimum rating</span>
              <select name="minRating" defaultValue={q.get("minRating") ?? ""}>
                <option value="">Any</option>
                <option value="4">4 stars and up</option>
                <option value="3">3 stars and up</option>
              </select>
            </label>
            <button type="submit">Apply</button>
          </form>
          <label className="check">
            <input type="checkbox" checked={q.get("inStock") === "1"} onChange={(e) => set("inStock", e.target.checked ? "1" : null)} /> In stock only
          </label>
          {data?.facets?.map((facet) => (
            <fieldset key={facet.field} className="facet">
              <legend>{facetName(facet.field ?? "")}</legend>
              {facet.values?.map((v) => {
                const field = facet.field ?? "";
                const value = v.value ?? "";
                if (field === "category" || field === "subcategory") {
                  const active = q.get(field) === value;
                  return (
                    <label key={value} className="check">
                      <input type="checkbox" checked={active} onChange={() => set(field, active ? null : value)} /> {value} <span className="muted">({v.count})</span>
                    </label>
                  );
                }
                const name = field.replace(/^attributes\./, "");
                const filter = value.includes("=") ? value : `${name}=${value}`;
                return (
                  <label key={value} className="check">
                    <input type="checkbox" checked={q.getAll("attr").includes(filter)} onChange={() => toggleAttr(filter)} /> {filter.split("=")[1]} <span className="muted">({v.count})</span>
                  </label>
                );
              })}
            </fieldset>
          ))}
        </aside>
        <div>
          <div className="toolbar">
            <span role="status">{data ? `${data.totalSize ?? 0} products` : "Searching…"}</span>
            <label>
              Sort by{" "}
              <select value={q.get("sort") ?? "SORT_ORDER_RELEVANCE"} onChange={(e) => set("sort", e.target.value)}>
                {SORTS.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <ErrorNote error={result.error} />
          <ProductGrid products={data?.products ?? []} />
          <Pager
            label="Pages"
            atFirst={tokens.length === 0}
            nextPageToken={data?.nextPageToken}
            onPrevious={() => setPages({ key, tokens: tokens.slice(0, -1) })}
            onNext={(token) => setPages({ key, tokens: [...tokens, token] })}
          />
        </div>
      </div>
    </section>
  );
}

function facetName(field: string): string {
  const name = field.replace(/^attributes\./, "");
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export function ProductGrid({ products }: { products: readonly Product[] }) {
  return (
    <ul className="grid">
      {products.map((p) => (
        <li key={p.productId} className="card">
          <Link href={`/products/${p.productId}`}>
            <strong>{p.title}</strong>
          </Link>
          <PriceLine product={p} />
          <Stars rating={p.rating?.average} count={p.rating?.count} />
        </li>
      ))}
    </ul>
  );
}

function PriceLine({ product }: { product: Product }) {
  const effective = product.effectivePrice ?? product.salePrice ?? product.listPrice;
  const reduced = effective && product.listPrice && Number(effective.units) * 1e9 + (effective.nanos ?? 0) < Number(product.listPrice.units) * 1e9 + (product.listPrice.nanos ?? 0);
  return (
    <p className="price">
      <Money value={effective} />{" "}
      {reduced ? (
        <s aria-label="Was">
          <Money value={product.listPrice} />
        </s>
      ) : null}
    </p>
  );
}

export function ProductPage({ productId }: { productId: string }) {
  const { user } = useSession();
  const product = useLoad(() => call(api.GET("/v1/products/{productId}", { params: { path: { productId } } })), [productId]);
  const reviews = useLoad(() => call(api.GET("/v1/products/{productId}/reviews", { params: { path: { productId }, query: { pageSize: 20 } } })), [productId]);
  const alsoBought = useLoad(
    () => call(api.GET("/v1/products/{productId}/recommendations", { params: { path: { productId }, query: { kind: "RECOMMENDATION_KIND_ALSO_BOUGHT", pageSize: 4 } } })),
    [productId],
  );
  const [quantity, setQuantity] = useState(1);
  const [added, setAdded] = useState("");
  const wish = useAction(async () => {
    await call(api.POST("/v1/users/{userId}/wishlist", { params: { path: { userId: user?.userId ?? "me" } }, body: { productId } }));
    setAdded("Saved to your wishlist.");
  });
  const add = useAction(async (units: number) => basket.add(productId, units));
  const p = product.data;
  if (product.error) return <ErrorNote error={product.error} />;
  if (!p) return <Status>Loading the product…</Status>;
  const stock = Number(p.stockAvailable ?? 0);
  const activeDiscount = p.discounts?.find((d) => Date.parse(d.startTime) <= Date.now() && Date.now() < Date.parse(d.endTime));
  return (
    <article className="product">
      <h1>{p.title}</h1>
      <div className="product-layout">
        <div>
          <PriceLine product={p} />
          {activeDiscount ? (
            <p className="badge">
              {activeDiscount.percentOff ? `${activeDiscount.percentOff}% off` : <>{<Money value={activeDiscount.amountOff} />} off</>} until {dateTime(activeDiscount.endTime)}
            </p>
          ) : null}
          <p className={stock > 0 ? "stock" : "stock out"}>{stock > 0 ? `${stock} in stock` : "Out of stock"}</p>
          <Stars rating={p.rating?.average} count={p.rating?.count} />
          <p>{p.description}</p>
          {p.attributes && Object.keys(p.attributes).length > 0 && (
            <dl className="attributes">
              {Object.entries(p.attributes).map(([name, v]) => (
                <div key={name}>
                  <dt>{name}</dt>
                  <dd>{String(v.textValue ?? v.numberValue ?? v.boolValue ?? "")}</dd>
                </div>
              ))}
            </dl>
          )}
        </div>
        <form
          className="buy"
          aria-label="Buy"
          onSubmit={(e) => {
            e.preventDefault();
            // The basket is the buyer's cart on the server: signing in comes first.
            if (!user) return navigate(`/signin?next=${encodeURIComponent(window.location.pathname)}`);
            setAdded("");
            void add.run(quantity).then((cart) => cart && setAdded(`Added ${quantity} to your basket.`));
          }}
        >
          <label className="field">
            <span>Quantity</span>
            <input type="number" min={1} max={Math.max(1, stock)} value={quantity} onChange={(e) => setQuantity(Math.max(1, Number(e.target.value)))} />
          </label>
          <button type="submit" disabled={stock < 1}>
            Add to basket
          </button>
          {user ? (
            <button type="button" className="secondary" onClick={() => void wish.run()} disabled={wish.busy}>
              Save to wishlist
            </button>
          ) : null}
          {added ? <Status>{added}</Status> : null}
          <ErrorNote error={add.error} />
          <ErrorNote error={wish.error} />
        </form>
      </div>
      <section aria-labelledby="reviews-title">
        <h2 id="reviews-title">Reviews</h2>
        <ErrorNote error={reviews.error} />
        {reviews.data?.reviews?.length ? (
          <ul className="reviews">
            {reviews.data.reviews.map((r) => (
              <li key={r.reviewId}>
                <Stars rating={r.rating} /> <strong>{r.title}</strong> {r.verifiedPurchase ? <span className="badge">Verified purchase</span> : null}
                <p>{r.body}</p>
                {r.sellerReply ? <p className="reply">Seller: {r.sellerReply}</p> : null}
              </li>
            ))}
          </ul>
        ) : (
          <p>No reviews yet.</p>
        )}
      </section>
      {alsoBought.data?.products?.length ? (
        <section aria-labelledby="also-title">
          <h2 id="also-title">Customers also bought</h2>
          <ProductGrid products={alsoBought.data.products} />
        </section>
      ) : null}
    </article>
  );
}
