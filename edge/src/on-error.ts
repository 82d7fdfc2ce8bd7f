/**
 * The one error path: a StitchError becomes its status and the OpenAI error
 * object; anything else becomes a generic 500 that names only the request id.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { NotFoundError, quoted, REQUEST_ID_HEADER, StitchError, toErrorResponse } from "../../shared/index.js";
import type { AppEnv } from "./bindings.js";

export function errorResponse(err: unknown, requestId: string | undefined): Response {
  const { status, headers, body } = toErrorResponse(err, requestId);
  const response = Response.json(body, { status: status as ContentfulStatusCode, headers });
  if (requestId) response.headers.set(REQUEST_ID_HEADER, requestId);
  return response;
}

/** Server-side failures are logged (with the cause the client never sees); client errors are not. */
export function logError(err: unknown, requestId: string | undefined): void {
  if (err instanceof StitchError && err.status < 500) return;
  const { name, message, cause } =
    err instanceof Error ? err : { name: "NonError", message: String(err), cause: undefined };
  console.error(JSON.stringify({ request_id: requestId, error: name, message, cause: String(cause ?? "") }));
}

export function onError(err: Error, c: Context<AppEnv>): Response {
  const requestId = c.get("requestId");
  logError(err, requestId);
  return errorResponse(err, requestId);
}

export function notFound(c: Context<AppEnv>): Response {
  return errorResponse(
    new NotFoundError(`No route for ${c.req.method} ${quoted(c.req.path)}`, "route_not_found"),
    c.get("requestId"),
  );
}
