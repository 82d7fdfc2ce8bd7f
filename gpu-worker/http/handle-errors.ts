/**
 * The one error path of both apps: every thrown value becomes the shared
 * OpenAI-style body with the request id; known errors keep their status and
 * code, anything else is logged in full and answered as a bare 500.
 */
import type { ErrorHandler, NotFoundHandler } from "hono";
import { NotFoundError, quoted, StitchError, toErrorResponse } from "../../shared/errors.js";
import type { WorkerEnv } from "./env.js";

export function onError(): ErrorHandler<WorkerEnv> {
  return function handleError(err, c) {
    const log = c.var.log;
    if (err instanceof StitchError) {
      const level = err.status >= 500 ? "warn" : "info";
      log?.[level]("request failed", { status: err.status, code: err.code, error: err.message, cause: err.cause });
    } else {
      log?.error("unexpected error", { error: err });
    }
    const { status, headers, body } = toErrorResponse(err, c.var.requestId);
    return c.json(body, status as 400, headers);
  };
}

export function notFound(): NotFoundHandler<WorkerEnv> {
  return function handleNotFound(c) {
    const { status, body } = toErrorResponse(
      new NotFoundError(`No route ${c.req.method} ${quoted(c.req.path)}`, "route_not_found"),
      c.var.requestId,
    );
    return c.json(body, status as 404);
  };
}
