// Returns (ReturnService) as the screens need them: the words for a state, what of an order
// can still be asked back, and the one read the buyer's order page and the seller's returns
// page share.
import { api, call, type Order, type Schemas } from "../api/client";
import { enumWords } from "../ui/kit";

export type Return = Schemas["Return"];

// Returns that hold their units: every state but rejected keeps the units from being asked
// back again (the server counts the same way, ERROR_REASON_RETURN_QUANTITY_EXCEEDED).
const HOLDING = new Set(["RETURN_STATE_REQUESTED", "RETURN_STATE_APPROVED", "RETURN_STATE_RECEIVED", "RETURN_STATE_REFUNDED"]);

// Orders whose delivered items can be sent back (the server's RETURNABLE_STATUSES).
export const RETURNABLE_ORDER_STATUSES = new Set(["ORDER_STATUS_DELIVERED", "ORDER_STATUS_PARTIALLY_REFUNDED"]);

const STATE_WORDS: Record<string, string> = {
  RETURN_STATE_REQUESTED: "Requested: waiting for the seller",
  RETURN_STATE_APPROVED: "Approved: send the items back",
  RETURN_STATE_REJECTED: "Rejected",
  RETURN_STATE_RECEIVED: "Received: the refund is being made",
  RETURN_STATE_REFUNDED: "Refunded",
};

export function returnStateWords(state: string | undefined): string {
  return STATE_WORDS[state ?? ""] ?? enumWords(state, "RETURN_STATE_");
}

/** Every return of an order, all pages (a buyer's own, a seller's those of their lines). */
export async function listReturns(orderId: string): Promise<Return[]> {
  const all: Return[] = [];
  let pageToken: string | undefined;
  do {
    const page = await call(api.GET("/v1/orders/{orderId}/returns", { params: { path: { orderId }, query: { pageSize: 100, pageToken } } }));
    all.push(...(page.returns ?? []));
    pageToken = page.nextPageToken || undefined;
  } while (pageToken);
  return all;
}

/** Units of each product of the order that can still be asked back. */
export function returnable(order: Order, returns: readonly Return[]): Map<string, number> {
  const left = new Map<string, number>();
  for (const item of order.items) left.set(item.productId, (left.get(item.productId) ?? 0) + Number(item.quantity ?? 0));
  for (const r of returns) {
    if (!HOLDING.has(r.state ?? "")) continue;
    for (const item of r.items) left.set(item.productId, (left.get(item.productId) ?? 0) - Number(item.quantity));
  }
  return left;
}

export function itemsText(r: Return): string {
  return r.items.map((i) => `${i.quantity} × ${i.title ?? i.productId}`).join("; ");
}
