/** The signed body as a typed request: JSON, schema, and the request id it names. */
import type { Context } from "hono";
import type { z } from "zod";
import { InvalidRequestError } from "../../shared/errors.js";
import type { WorkerEnv } from "./env.js";

/** Parses the signed body as JSON against `schema`; any failure is a 400 naming the first bad field. */
export function parseBody<S extends z.ZodType>(c: Context<WorkerEnv>, schema: S): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(c.var.rawBody).toString("utf8"));
  } catch {
    throw new InvalidRequestError("The request body is not valid JSON", "invalid_json");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.length ? issue.path.join(".") : null;
    throw new InvalidRequestError(
      `${param ?? "body"}: ${issue?.message ?? "invalid"}`,
      param ? "invalid_parameter" : "invalid_body",
      param,
    );
  }
  return parsed.data;
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
