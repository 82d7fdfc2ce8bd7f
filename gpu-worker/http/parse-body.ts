/** The signed body as a typed request: JSON, schema, and the request id it names. */
import type { Context } from "hono";
import type { z } from "zod";
import { InvalidRequestError } from "../../shared/errors.js";
import { parseJson, parseWith } from "../../shared/parse-with.js";
import type { WorkerEnv } from "./env.js";

/**
 * Parses the signed body as JSON against `schema` with the edge's own mapper (shared/parse-with.ts): any failure is
 * a 400 naming the first bad field, with the same code the edge gives the same mistake.
 */
export function parseBody<S extends z.ZodType>(c: Context<WorkerEnv>, schema: S): z.infer<S> {
  return parseWith(schema, parseJson(c.var.rawBody));
}

/** The signed header and the body must name the same request, or logs and billing would disagree. */
export function checkRequestId(c: Context<WorkerEnv>, req: { request_id: string }): void {
  if (req.request_id !== c.var.requestId) {
    throw new InvalidRequestError(
      "request_id differs from the x-request-id header",
      "request_id_mismatch",
      "request_id",
    );
  }
}
