import { createMiddleware } from "hono/factory";
import { REQUEST_ID_HEADER } from "../../shared/index.js";
import type { AppEnv } from "./bindings.js";

/** A fresh id per request, generated here (never taken from the client: the ledger is keyed by it). */
export function newRequestId(): string {
  return `req_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Sets `c.var.requestId` and echoes it as `x-request-id` on every response, errors included. */
export function requestId() {
  return createMiddleware<AppEnv>(async function requestIdMiddleware(c, next) {
    const id = newRequestId();
    c.set("requestId", id);
    c.header(REQUEST_ID_HEADER, id);
    await next();
  });
}
