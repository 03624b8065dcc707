// The basket, kept in this browser until the server-side cart exists (issue 15:
// GET/POST/PATCH/DELETE /v1/cart, POST /v1/cart:checkout). Screens use only this interface,
// so the server cart replaces the storage below without touching them.
import { useSyncExternalStore } from "react";
import type { Money, Product } from "../api/client";

export interface BasketLine {
  productId: string;
  title: string;
  sellerId: string;
  unitPrice: Money | undefined;
  quantity: number;
}

const KEY = "marketplace.basket";

class Basket {
  private lines: BasketLine[] = read();
  private listeners = new Set<() => void>();

  snapshot = (): BasketLine[] => this.lines;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  add(product: Product, quantity: number): void {
    const id = product.productId ?? "";
    const existing = this.lines.find((l) => l.productId === id);
    this.save(
      existing
        ? this.lines.map((l) => (l.productId === id ? { ...l, quantity: l.quantity + quantity } : l))
        : [...this.lines, { productId: id, title: product.title, sellerId: product.sellerId ?? "", unitPrice: product.effectivePrice ?? product.listPrice, quantity }],
    );
  }

  setQuantity(productId: string, quantity: number): void {
    this.save(quantity < 1 ? this.lines.filter((l) => l.productId !== productId) : this.lines.map((l) => (l.productId === productId ? { ...l, quantity } : l)));
  }

  /** After a successful checkout only: a failed one leaves the basket as it was. */
  clear(): void {
    this.save([]);
  }

  private save(lines: BasketLine[]): void {
    this.lines = lines;
    localStorage.setItem(KEY, JSON.stringify(lines));
    for (const listener of this.listeners) listener();
  }
}

function read(): BasketLine[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(parsed) ? (parsed as BasketLine[]) : [];
  } catch {
    return [];
  }
}

export const basket = new Basket();

export function useBasket(): BasketLine[] {
  return useSyncExternalStore(basket.subscribe, basket.snapshot);
}
