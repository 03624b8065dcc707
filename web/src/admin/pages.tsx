// The admin console: users (search, roles, suspend), the category tree, review moderation,
// sales over time.
import { useState, type FormEvent } from "react";
import { api, call, type Schemas, type User } from "../api/client";
import { categoryTree, type CategoryNode } from "../catalog/categories";
import { ErrorNote, Field, Stars, Status, enumWords, useAction, useLoad } from "../ui/kit";

type Role = Schemas["Role"];
const ROLES: Role[] = ["ROLE_CUSTOMER", "ROLE_SELLER", "ROLE_ADMIN"];

export function AdminUsers() {
  const [query, setQuery] = useState("");
  const list = useLoad(() => call(api.GET("/v1/users", { params: { query: { query: query || undefined, pageSize: 25 } } })), [query]);
  const search = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setQuery(String(new FormData(event.currentTarget).get("query") ?? ""));
  };
  return (
    <section>
      <h1>Users</h1>
      <form onSubmit={search} className="inline" role="search" aria-label="Search users">
        <Field label="Email, username or name" name="query" type="search" />
        <button type="submit">Search</button>
      </form>
      <ErrorNote error={list.error} />
      <ul className="plain">
        {list.data?.users?.map((u) => (
          <UserRow key={u.userId} user={u} onChange={list.reload} />
        ))}
      </ul>
    </section>
  );
}

function UserRow({ user, onChange }: { user: User; onChange: () => void }) {
  const userId = user.userId ?? "";
  const roles = useAction(async (next: Role[]) => {
    await call(api.POST("/v1/users/{userId}:setRoles", { params: { path: { userId } }, body: { roles: next } }));
    onChange();
  });
  const suspend = useAction(async (reason: string) => {
    await call(api.POST("/v1/users/{userId}:suspend", { params: { path: { userId } }, body: { reason } }));
    onChange();
  });
  const reactivate = useAction(async () => {
    await call(api.POST("/v1/users/{userId}:reactivate", { params: { path: { userId } }, body: {} }));
    onChange();
  });
  const toggle = (role: Role, on: boolean) => {
    const current = user.roles ?? [];
    void roles.run(on ? [...current, role] : current.filter((r) => r !== role));
  };
  const suspended = user.state === "USER_STATE_SUSPENDED";
  return (
    <li className="card">
      <strong>{user.displayName || user.username}</strong> <span className="muted">{user.email}</span> · {enumWords(user.state, "USER_STATE_")}
      <fieldset className="inline">
        <legend>Roles</legend>
        {ROLES.map((role) => (
          <label key={role} className="check">
            <input type="checkbox" checked={user.roles?.includes(role) ?? false} onChange={(e) => toggle(role, e.target.checked)} disabled={roles.busy} /> {enumWords(role, "ROLE_")}
          </label>
        ))}
      </fieldset>
      {suspended ? (
        <button type="button" className="secondary" onClick={() => void reactivate.run()}>
          Reactivate
        </button>
      ) : (
        <form
          className="inline"
          aria-label={`Suspend ${user.username}`}
          onSubmit={(e) => {
            e.preventDefault();
            void suspend.run(String(new FormData(e.currentTarget).get("reason")));
          }}
        >
          <Field label="Reason" name="reason" required />
          <button type="submit" className="danger">
            Suspend
          </button>
        </form>
      )}
      <ErrorNote error={roles.error ?? suspend.error ?? reactivate.error} />
    </li>
  );
}

export function AdminCategories() {
  const tree = useLoad(() => categoryTree(true), []);
  const create = useAction(async (category: Schemas["Category"]) => {
    await call(api.POST("/v1/categories", { body: category }));
    tree.reload();
  });
  const remove = useAction(async (categoryId: string) => {
    await call(api.DELETE("/v1/categories/{categoryId}", { params: { path: { categoryId } } }));
    tree.reload();
  });
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    void create.run({ categoryId: String(data.get("categoryId")), displayName: String(data.get("displayName")), parentId: String(data.get("parentId")) || undefined });
  };
  const render = (nodes: CategoryNode[]) => (
    <ul>
      {nodes.map((n) => (
        <li key={n.categoryId}>
          {n.displayName} <span className="muted">({n.categoryId})</span>{" "}
          <button type="button" className="link" onClick={() => void remove.run(n.categoryId ?? "")}>
            Delete <span className="visually-hidden">{n.displayName}</span>
          </button>
          {n.children.length ? render(n.children) : null}
        </li>
      ))}
    </ul>
  );
  return (
    <section>
      <h1>Categories</h1>
      <ErrorNote error={tree.error ?? remove.error} />
      {tree.data ? render(tree.data) : <Status>Loading…</Status>}
      <form onSubmit={submit} aria-label="New category" className="narrow">
        <h2>New category</h2>
        <Field label="Id" name="categoryId" required pattern="[a-z0-9-]+" hint="Lower-case letters, digits and -" />
        <Field label="Name" name="displayName" required />
        <label className="field">
          <span>Parent</span>
          <select name="parentId">
            <option value="">None (top level)</option>
            {tree.data?.map((c) => (
              <option key={c.categoryId} value={c.categoryId}>
                {c.displayName}
              </option>
            ))}
          </select>
        </label>
        <ErrorNote error={create.error} />
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

export function AdminReviews() {
  const [productId, setProductId] = useState("");
  const [query, setQuery] = useState("");
  const found = useLoad(() => (query ? call(api.GET("/v1/products", { params: { query: { query, pageSize: 10 } } })) : Promise.resolve(undefined)), [query]);
  const reviews = useLoad(
    () => (productId ? call(api.GET("/v1/products/{productId}/reviews", { params: { path: { productId }, query: { pageSize: 50 } } })) : Promise.resolve(undefined)),
    [productId],
  );
  const hide = useAction(async (reviewId: string, reason: string) => {
    await call(api.POST("/v1/products/{productId}/reviews/{reviewId}:hide", { params: { path: { productId, reviewId } }, body: { reason } }));
    reviews.reload();
  });
  return (
    <section>
      <h1>Review moderation</h1>
      <form
        className="inline"
        role="search"
        aria-label="Find a product"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(String(new FormData(e.currentTarget).get("query") ?? ""));
        }}
      >
        <Field label="Product" name="query" type="search" />
        <button type="submit">Find</button>
      </form>
      <ul className="plain">
        {found.data?.products?.map((p) => (
          <li key={p.productId}>
            <button type="button" className="link" onClick={() => setProductId(p.productId ?? "")}>
              {p.title}
            </button>
          </li>
        ))}
      </ul>
      <ErrorNote error={reviews.error ?? hide.error} />
      <ul className="reviews">
        {reviews.data?.reviews?.map((r) => (
          <li key={r.reviewId}>
            <Stars rating={r.rating} /> <strong>{r.title}</strong> {enumWords(r.state, "REVIEW_STATE_")}
            <p>{r.body}</p>
            {r.state !== "REVIEW_STATE_HIDDEN" ? (
              <form
                className="inline"
                aria-label={`Hide review ${r.title}`}
                onSubmit={(e) => {
                  e.preventDefault();
                  void hide.run(r.reviewId ?? "", String(new FormData(e.currentTarget).get("reason")));
                }}
              >
                <Field label="Reason" name="reason" required />
                <button type="submit" className="danger">
                  Hide
                </button>
              </form>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
