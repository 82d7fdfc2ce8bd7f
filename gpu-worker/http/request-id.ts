/**
 * Request id middleware: takes `x-request-id` from the caller (the edge signs it)
 * or makes one, echoes it on the response, and binds it into the request's
 * logger, which also writes the access line.
 */
import { randomUUID } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { REQUEST_ID_HEADER } from "../../shared/sign-request.js";
import type { WorkerEnv } from "./env.js";
import type { Logger } from "./logger.js";

// Same bound as the contract's `request_id` (1..128); printable ASCII only, as it lands in logs and headers.
const VALID = /^[\x21-\x7e]{1,128}$/;

export function requestId(options: { logger: Logger }): MiddlewareHandler<WorkerEnv> {
  return async function requestIdMiddleware(c, next) {
    const given = c.req.header(REQUEST_ID_HEADER);
    const id = given && VALID.test(given) ? given : `req_${randomUUID()}`;
    const log = options.logger.child({ request_id: id });
    c.set("requestId", id);
    c.set("log", log);
    const started = performance.now();
    await next();
    c.header(REQUEST_ID_HEADER, id);
    // The status of a stream is that of its headers; its errors are logged where they happen.
    log.info("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(performance.now() - started),
    });
  };
}
