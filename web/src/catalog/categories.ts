// The category tree, read once per page load (it changes rarely and is small).
import { api, call, type Category } from "../api/client";

export interface CategoryNode extends Category {
  children: CategoryNode[];
}

let cached: Promise<CategoryNode[]> | null = null;

export function categoryTree(refresh = false): Promise<CategoryNode[]> {
  if (refresh || !cached) {
    cached = call(api.GET("/v1/categories", {})).then((r) => buildTree(r.categories ?? []));
    cached.catch(() => (cached = null));
  }
  return cached;
}

function buildTree(categories: readonly Category[]): CategoryNode[] {
  const nodes = new Map<string, CategoryNode>();
  for (const c of categories) nodes.set(c.categoryId ?? "", { ...c, children: [] });
  const roots: CategoryNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.parentId ? nodes.get(node.parentId) : undefined;
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  return roots;
}
