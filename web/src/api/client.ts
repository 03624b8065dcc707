// The typed client of the public REST API (types generated from gen/openapi by `npm run gen`).
// Every call goes to the page's own origin: the edge serves both the app and the API.
import createClient from "openapi-fetch";
import { ApiError, networkProblem, problemFrom } from "./errors";
import type { components, paths } from "./schema";
import { tokens } from "../auth/tokens";

export type Schemas = components["schemas"];
export type Product = Schemas["Product"];
export type Order = Schemas["Order"];
export type Money = Schemas["Money"];
export type User = Schemas["User"];
export type Category = Schemas["Category"];
export type Review = Schemas["Review"];
export type Address = Schemas["Address"];

/** fetch with the bearer token; a 401 refreshes the token once and sends the request again. */
export async function authFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const send = async (request: Request) => {
    const token = await tokens.fresh();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return fetch(request);
  };
  const response = await send(input);
  if (response.status === 401 && tokens.signedIn() && (await tokens.refresh())) return send(retry);
  return response;
}

export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: authFetch });

/** The data of an answer, or an ApiError whose message a person can read. */
export async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result;
  try {
    result = await pending;
  } catch {
    throw new ApiError(networkProblem());
  }
  if (!result.response.ok || result.data === undefined) {
    throw new ApiError(problemFrom(result.response.status, result.error));
  }
  return result.data;
}

/** A new Idempotency-Key: one per checkout attempt, kept for its retries. */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}
