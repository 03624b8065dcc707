// Sellers: create and edit a listing with its etag (a conflict shows the current version),
// publish, and the listing's stock with its ledger and its discounts.
import { useState, type FormEvent } from "react";
import { api, call, type Product } from "../api/client";
import { Link, navigate } from "../app/router";
import { categoryTree } from "../catalog/categories";
import { ErrorNote, Field, Money, Status, dateTime, enumWords, formatMoney, moneyAmount, problemOf, toMoney, useAction, useLoad } from "../ui/kit";

interface Draft {
  title: string;
  description: string;
  category: string;
  subcategory: string;
  listPrice: string;
  salePrice: string;
}

function draftOf(p: Product | undefined): Draft {
  return {
    title: p?.title ?? "",
    description: p?.description ?? "",
    category: p?.category ?? "",
    subcategory: p?.subcategory ?? "",
    listPrice: p ? String(moneyAmount(p.listPrice)) : "",
    salePrice: p?.salePrice ? String(moneyAmount(p.salePrice)) : "",
  };
}

function read(form: HTMLFormElement): Draft {
  const data = new FormData(form);
  const text = (name: string) => String(data.get(name) ?? "").trim();
  return { title: text("title"), description: text("description"), category: text("category"), subcategory: text("subcategory"), listPrice: text("listPrice"), salePrice: text("salePrice") };
}

function ListingFields({ draft }: { draft: Draft }) {
  const tree = useLoad(() => categoryTree(), []);
  const [category, setCategory] = useState(draft.category);
  // Controlled: the options arrive with the tree, after the first render.
  const [subcategory, setSubcategory] = useState(draft.subcategory);
  const children = tree.data?.find((c) => c.categoryId === category)?.children ?? [];
  return (
    <>
      <Field label="Title" name="title" defaultValue={draft.title} required maxLength={200} />
      <label className="field">
        <span>Description</span>
        <textarea name="description" rows={4} defaultValue={draft.description} />
      </label>
      <label className="field">
        <span>Category</span>
        <select
          name="category"
          value={category}
          onChange={(e) => {
            setCategory(e.target.value);
            setSubcategory("");
          }}
          required
        >
          <option value="">Choose…</option>
          {tree.data?.map((c) => (
            <option key={c.categoryId} value={c.categoryId}>
              {c.displayName}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Subcategory</span>
        <select name="subcategory" value={subcategory} onChange={(e) => setSubcategory(e.target.value)}>
          <option value="">None</option>
          {children.map((c) => (
            <option key={c.categoryId} value={c.categoryId}>
              {c.displayName}
            </option>
          ))}
        </select>
      </label>
      <Field label="List price (USD)" name="listPrice" type="number" min="0.01" step="0.01" defaultValue={draft.listPrice} required />
      <Field label="Sale price (USD, optional)" name="salePrice" type="number" min="0" step="0.01" defaultValue={draft.salePrice} />
    </>
  );
}

export function NewListing() {
  const create = useAction(async (draft: Draft, stock: number, publish: boolean) =>
    call(
      api.POST("/v1/products", {
        body: {
          product: {
            title: draft.title,
            description: draft.description,
            category: draft.category,
            subcategory: draft.subcategory || undefined,
            listPrice: toMoney(draft.listPrice),
            salePrice: draft.salePrice ? toMoney(draft.salePrice) : undefined,
            initialStock: String(stock),
          },
          publish,
        },
      }),
    ),
  );
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const created = await create.run(read(form), Number(data.get("initialStock") ?? 0), data.get("publish") === "on");
    if (created) navigate(`/sell/products/${created.productId}`);
  };
  return (
    <section className="narrow">
      <h1>New listing</h1>
      <form onSubmit={submit} aria-label="New listing">
        <ListingFields draft={draftOf(undefined)} />
        <Field label="Initial stock" name="initialStock" type="number" min="0" defaultValue="1" required />
        <label className="check">
          <input type="checkbox" name="publish" /> Publish at once
        </label>
        <ErrorNote error={create.error} />
        <button type="submit" disabled={create.busy}>
          Create the listing
        </button>
      </form>
    </section>
  );
}

export function EditListing({ productId }: { productId: string }) {
  const loaded = useLoad(() => call(api.GET("/v1/products/{productId}", { params: { path: { productId } } })), [productId]);
  const [product, setProduct] = useState<Product | undefined>();
  const [conflict, setConflict] = useState<Product | undefined>();
  const [saved, setSaved] = useState("");
  const current = product?.productId === productId ? product : loaded.data;
  const save = useAction(async (draft: Draft) => {
    if (!current) return;
    const body = {
      title: draft.title,
      description: draft.description,
      category: draft.category,
      subcategory: draft.subcategory,
      listPrice: toMoney(draft.listPrice),
      salePrice: draft.salePrice ? toMoney(draft.salePrice) : undefined,
      etag: current.etag,
    };
    try {
      const updated = await call(
        api.PATCH("/v1/products/{productId}", {
          params: { path: { productId }, query: { updateMask: "title,description,category,subcategory,listPrice,salePrice" } },
          body,
        }),
      );
      setProduct(updated);
      setConflict(undefined);
      setSaved("Saved.");
    } catch (error) {
      if (problemOf(error).reason === "ETAG_MISMATCH" || problemOf(error).status === 409) {
        setConflict(await call(api.GET("/v1/products/{productId}", { params: { path: { productId } } })));
      }
      throw error;
    }
  });
  const transition = useAction(async (verb: "publish" | "unpublish" | "archive") => {
    const path = `/v1/products/{productId}:${verb}` as const;
    setProduct(await call(api.POST(path, { params: { path: { productId } }, body: {} })));
  });
  if (loaded.error) return <ErrorNote error={loaded.error} />;
  if (!current) return <Status>Loading the listing…</Status>;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setSaved("");
    void save.run(read(event.currentTarget));
  };
  return (
    <section>
      <h1>{current.title}</h1>
      <p>
        State: <strong data-testid="listing-state">{enumWords(current.state, "PRODUCT_STATE_")}</strong> · <Link href={`/products/${productId}`}>View in the shop</Link>
      </p>
      <div className="actions">
        {current.state !== "PRODUCT_STATE_PUBLISHED" && current.state !== "PRODUCT_STATE_ARCHIVED" ? (
          <button type="button" onClick={() => void transition.run("publish")} disabled={transition.busy}>
            Publish
          </button>
        ) : null}
        {current.state === "PRODUCT_STATE_PUBLISHED" ? (
          <button type="button" className="secondary" onClick={() => void transition.run("unpublish")} disabled={transition.busy}>
            Unpublish
          </button>
        ) : null}
        {current.state !== "PRODUCT_STATE_ARCHIVED" ? (
          <button type="button" className="secondary" onClick={() => void transition.run("archive")} disabled={transition.busy}>
            Archive
          </button>
        ) : null}
      </div>
      <ErrorNote error={transition.error} />
      <div className="two-columns">
        <form key={current.etag} onSubmit={submit} aria-label="Edit the listing">
          <h2>Details</h2>
          <ListingFields draft={draftOf(current)} />
          <ErrorNote error={save.error} />
          {saved ? <Status>{saved}</Status> : null}
          <button type="submit" disabled={save.busy}>
            Save changes
          </button>
        </form>
        {conflict ? (
          <aside className="conflict" aria-labelledby="conflict-title">
            <h2 id="conflict-title">The current version</h2>
            <p>Someone saved this listing after you opened it. This is what it says now; your changes were not saved.</p>
            <dl>
              <dt>Title</dt>
              <dd>{conflict.title}</dd>
              <dt>Description</dt>
              <dd>{conflict.description}</dd>
              <dt>List price</dt>
              <dd>{formatMoney(conflict.listPrice)}</dd>
              <dt>Sale price</dt>
              <dd>{formatMoney(conflict.salePrice) || "none"}</dd>
            </dl>
            <button
              type="button"
              onClick={() => {
                setProduct(conflict);
                setConflict(undefined);
                save.setError(null);
              }}
            >
              Edit the current version
            </button>
          </aside>
        ) : null}
      </div>
      <Inventory productId={productId} />
      <Discounts product={current} onChange={setProduct} />
    </section>
  );
}

function Inventory({ productId }: { productId: string }) {
  const level = useLoad(() => call(api.GET("/v1/products/{productId}/inventory", { params: { path: { productId } } })), [productId]);
  const ledger = useLoad(() => call(api.GET("/v1/products/{productId}/inventory/ledger", { params: { path: { productId }, query: { pageSize: 20 } } })), [productId]);
  const adjust = useAction(async (delta: number, reason: string) => {
    await call(api.POST("/v1/products/{productId}/inventory:adjust", { params: { path: { productId } }, body: { delta: String(delta), reason } }));
    level.reload();
    ledger.reload();
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    void adjust.run(Number(data.get("delta")), String(data.get("reason"))).then(() => form.reset());
  };
  return (
    <section aria-labelledby="stock-title">
      <h2 id="stock-title">Stock</h2>
      <ErrorNote error={level.error} />
      {level.data ? (
        <p>
          On hand {level.data.onHand ?? 0} · reserved {level.data.reserved ?? 0} · available <strong>{level.data.available ?? 0}</strong>
        </p>
      ) : null}
      <form onSubmit={submit} className="inline" aria-label="Adjust the stock">
        <Field label="Change (units, negative to remove)" name="delta" type="number" required />
        <Field label="Reason" name="reason" required />
        <button type="submit" disabled={adjust.busy}>
          Adjust
        </button>
      </form>
      <ErrorNote error={adjust.error} />
      <table className="compact">
        <caption>Ledger, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">On hand</th>
            <th scope="col">Reserved</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {ledger.data?.entries?.map((e) => (
            <tr key={e.entryId}>
              <td>{dateTime(e.createTime)}</td>
              <td>{e.onHandDelta}</td>
              <td>{e.reservedDelta}</td>
              <td>{e.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Discounts({ product, onChange }: { product: Product; onChange: (p: Product) => void }) {
  const productId = product.productId ?? "";
  const reread = async () => onChange(await call(api.GET("/v1/products/{productId}", { params: { path: { productId } } })));
  const create = useAction(async (percentOff: number, days: number) => {
    const start = new Date();
    const end = new Date(start.getTime() + days * 86_400_000);
    await call(api.POST("/v1/products/{productId}/discounts", { params: { path: { productId } }, body: { percentOff, startTime: start.toISOString(), endTime: end.toISOString() } }));
    await reread();
  });
  const remove = useAction(async (discountId: string) => {
    await call(api.DELETE("/v1/products/{productId}/discounts/{discountId}", { params: { path: { productId, discountId } } }));
    await reread();
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    void create.run(Number(data.get("percentOff")), Number(data.get("days")));
  };
  return (
    <section aria-labelledby="discounts-title">
      <h2 id="discounts-title">Discounts</h2>
      <p>
        Price now: <Money value={product.effectivePrice} />
      </p>
      <ul>
        {product.discounts?.map((d) => (
          <li key={d.discountId}>
            {d.percentOff ? `${d.percentOff}% off` : `${formatMoney(d.amountOff)} off`}, {dateTime(d.startTime)} to {dateTime(d.endTime)}{" "}
            <button type="button" className="link" onClick={() => void remove.run(d.discountId ?? "")}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <form onSubmit={submit} className="inline" aria-label="Add a discount">
        <Field label="Percent off" name="percentOff" type="number" min="1" max="90" required />
        <Field label="For days" name="days" type="number" min="1" defaultValue="7" required />
        <button type="submit" disabled={create.busy}>
          Add the discount
        </button>
      </form>
      <ErrorNote error={create.error ?? remove.error} />
    </section>
  );
}
