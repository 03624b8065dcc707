// The basket is the buyer's server-side cart (GET /v1/cart and /v1/cart/items): every read
// prices the lines against the catalog now, so the screens show what checking out will charge.
// This module keeps the last cart the server returned, for the header's count and the screens.
import { useSyncExternalStore } from "react";
import { api, call, type Schemas } from "../api/client";
import { formatMoney } from "../ui/kit";

export type Cart = Schemas["Cart"];
export type CartLine = Schemas["CartItem"];

export interface BasketState {
  cart: Cart | undefined;
  error: unknown;
}

class Basket {
  private state: BasketState = { cart: undefined, error: null };
  private listeners = new Set<() => void>();
  // Answers can arrive out of order; only the newest request's cart is kept.
  private generation = 0;

  snapshot = (): BasketState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Reads the cart again: after sign-in, and after a checkout whatever its outcome. */
  load(): Promise<Cart | undefined> {
    return this.apply(call(api.GET("/v1/cart")));
  }

  add(productId: string, quantity: number): Promise<Cart> {
    return this.change(call(api.POST("/v1/cart/items", { body: { productId, quantity } })));
  }

  setQuantity(productId: string, quantity: number): Promise<Cart> {
    if (quantity < 1) return this.remove(productId);
    return this.change(call(api.PATCH("/v1/cart/items/{productId}", { params: { path: { productId } }, body: { quantity } })));
  }

  remove(productId: string): Promise<Cart> {
    return this.change(call(api.DELETE("/v1/cart/items/{productId}", { params: { path: { productId } } })));
  }

  /** Signed out: nothing to show until the next sign-in. */
  forget(): void {
    this.generation += 1;
    this.set({ cart: undefined, error: null });
  }

  private async change(pending: Promise<Cart>): Promise<Cart> {
    const generation = ++this.generation;
    const cart = await pending; // a failed change leaves the shown cart alone; the caller shows why
    if (generation === this.generation) this.set({ cart, error: null });
    return cart;
  }

  private async apply(pending: Promise<Cart>): Promise<Cart | undefined> {
    const generation = ++this.generation;
    try {
      const cart = await pending;
      if (generation === this.generation) this.set({ cart, error: null });
      return cart;
    } catch (error) {
      if (generation === this.generation) this.set({ ...this.state, error });
      return undefined;
    }
  }

  private set(state: BasketState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}

export const basket = new Basket();

export function useBasket(): BasketState {
  return useSyncExternalStore(basket.subscribe, basket.snapshot);
}

/** What a buyer must know about a line before checking it out, in words (none when all is well). */
export function lineWarnings(line: CartLine): string[] {
  const words: string[] = [];
  if (line.priceChanged) {
    words.push(`The price changed since you added it: it was ${formatMoney(line.addedUnitPrice)}, now ${formatMoney(line.unitPrice)}.`);
  }
  switch (line.availability) {
    case "CART_ITEM_AVAILABILITY_UNAVAILABLE":
      words.push("No longer on sale: remove it to check out.");
      break;
    case "CART_ITEM_AVAILABILITY_INSUFFICIENT_STOCK":
      words.push(`Only ${line.stockAvailable ?? "0"} left in stock: lower the quantity to check out.`);
      break;
    case "CART_ITEM_AVAILABILITY_UNKNOWN":
      words.push("Availability could not be checked just now; prices are those of when you added it.");
      break;
  }
  return words;
}
