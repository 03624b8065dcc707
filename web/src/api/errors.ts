// API errors in words. The edge answers every error as a google.rpc.Status in JSON
// (AIP-193): a code, a message, and details such as ErrorInfo (a reason) and BadRequest
// (field violations). People see a sentence, never the JSON.

export interface ApiProblem {
  status: number;
  reason: string;
  message: string;
  fields: { field: string; description: string }[];
}

// What a person can do about the reasons a screen is likely to meet; other reasons show the
// service's own message, which AIP-193 asks to be short and actionable.
const REASONS: Record<string, string> = {
  PAYMENT_DECLINED: "Your card was declined. Nothing was charged; try another card.",
  PAYMENT_UNAVAILABLE: "The payment service could not be reached. Nothing was charged; please try again.",
  PAYMENT_PENDING: "Your payment is still being confirmed. Try again in a moment: you will not be charged twice.",
  INSUFFICIENT_STOCK: "Not enough of an item is in stock for this order.",
  INVALID_CREDENTIALS: "The email address or password is not right.",
  ETAG_MISMATCH: "Someone changed this listing since you opened it.",
  EMAIL_ALREADY_REGISTERED: "An account with this email address already exists.",
  USERNAME_TAKEN: "This username is taken; choose another.",
  REFRESH_TOKEN_REUSED: "Your session ended; please sign in again.",
  TOKEN_INVALID: "This link is no longer valid.",
  ORDER_CHANGE_IN_PROGRESS: "The order is being changed right now; try again in a moment.",
  REFRESH_TOKEN_EXPIRED: "Your session ended; please sign in again.",
  REFRESH_TOKEN_REVOKED: "Your session ended; please sign in again.",
  CART_CHECKOUT_IN_PROGRESS: "Your order is still being placed. Try again in a moment: you will not be charged twice.",
  CHANGE_PENDING: "The change was accepted and is being finished; look again in a moment.",
  ORDER_NOT_DELIVERED: "Only delivered items can be returned.",
  RETURN_WINDOW_CLOSED: "The time to return these items has passed.",
  RETURN_QUANTITY_EXCEEDED: "You asked to return more units than you can: some were already returned or asked back.",
  RETURN_ITEM_NOT_IN_ORDER: "One of the items is not part of this order.",
  RETURN_SPANS_SELLERS: "Items of different sellers go back separately: ask one return per seller.",
  RETURN_STATE_INVALID: "This return has moved on meanwhile; reload to see where it is.",
  RETURN_REFUND_IN_PROGRESS: "The refund of this return is being made right now; look again in a moment.",
  NOT_RETURN_SELLER: "Only the seller of these items can decide on this return.",
  NOT_YOUR_LEDGER: "You can only see your own balance, ledger and payouts.",
  ROLE_REQUIRED: "Your account does not have the role this needs.",
  TAX_RATE_NOT_FOUND: "That country has no tax rate (it is taxed at zero); add one instead.",
  SHIPPING_CURRENCY_MISMATCH: "A seller in this order ships only in another currency, so it cannot be placed. Nothing was charged.",
  WRONG_PASSWORD: "That is not your current password.",
  USER_NOT_FOUND: "This account does not exist, or was deleted.",
  PRODUCT_SERVICE_UNAVAILABLE: "Part of the marketplace could not be reached, so your data could not be gathered completely. Try again shortly.",
  ORDER_SERVICE_UNAVAILABLE: "Part of the marketplace could not be reached, so your data could not be gathered completely. Try again shortly.",
};

const STATUS_WORDS: Record<number, string> = {
  400: "Some of what you entered is not valid.",
  401: "Please sign in.",
  403: "You are not allowed to do this.",
  404: "This was not found.",
  409: "This changed meanwhile; reload and try again.",
  413: "That is too large to send.",
  429: "Too many requests; wait a moment and try again.",
  503: "The service is unavailable right now; try again shortly.",
  504: "The service took too long to answer; try again.",
};

interface StatusBody {
  message?: unknown;
  details?: { "@type"?: string; reason?: unknown; fieldViolations?: { field?: string; description?: string }[] }[];
}

export function problemFrom(status: number, body: unknown): ApiProblem {
  const parsed = (typeof body === "object" && body !== null ? body : {}) as StatusBody;
  let reason = "";
  const fields: ApiProblem["fields"] = [];
  for (const detail of parsed.details ?? []) {
    const type = detail["@type"] ?? "";
    if (type.endsWith("google.rpc.ErrorInfo") && typeof detail.reason === "string") reason = detail.reason;
    if (type.endsWith("google.rpc.BadRequest")) {
      for (const v of detail.fieldViolations ?? []) fields.push({ field: v.field ?? "", description: v.description ?? "" });
    }
  }
  const serviceMessage = typeof parsed.message === "string" ? parsed.message : "";
  const message = REASONS[reason] ?? (serviceMessage && status < 500 ? sentence(serviceMessage) : STATUS_WORDS[status] ?? "Something went wrong; please try again.");
  return { status, reason, message, fields };
}

function sentence(text: string): string {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

export class ApiError extends Error {
  readonly problem: ApiProblem;
  constructor(problem: ApiProblem) {
    super(problem.message);
    this.problem = problem;
  }
}

export function networkProblem(): ApiProblem {
  return { status: 0, reason: "NETWORK", message: "The marketplace could not be reached; check your connection.", fields: [] };
}
