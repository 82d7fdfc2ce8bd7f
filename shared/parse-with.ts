/**
 * The one way a body becomes a typed request at every boundary (the edge's API, the functions' calls): JSON, then a
 * zod schema, each failure a 400 with the same codes wherever it happens.
 */
import type { z } from "zod";
import { InvalidRequestError, quoted } from "./errors.js";
import { ownValue } from "./paths.js";

const CODES: Record<string, string> = {
  invalid_type: "invalid_type",
  too_big: "parameter_out_of_range",
  too_small: "parameter_out_of_range",
  unrecognized_keys: "unknown_parameter",
  invalid_value: "invalid_value",
  invalid_union: "invalid_type",
};

/** Parses with a zod schema; the first issue becomes a 400 naming the parameter (`messages.0.content`). */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new InvalidRequestError("Invalid request", "invalid_request");
  const param = issue.path.map(String).join(".") || null;
  const where = param ? quoted(param) : "request";
  const detail =
    issue.code === "unrecognized_keys"
      ? `unknown parameter(s) ${issue.keys
          .slice(0, 4)
          .map((k) => quoted(k))
          .join(", ")}${issue.keys.length > 4 ? ` and ${issue.keys.length - 4} more` : ""}`
      : issue.message;
  throw new InvalidRequestError(
    `Invalid ${where}: ${detail}`,
    ownValue(CODES, issue.code) ?? "invalid_parameter",
    param,
  );
}

/** A body's bytes as JSON (strict UTF-8); empty or malformed is a 400 `invalid_json`. */
export function parseJson(body: Uint8Array): unknown {
  if (body.byteLength === 0) throw new InvalidRequestError("Request body is empty; expected JSON", "invalid_json");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body));
  } catch {
    throw new InvalidRequestError("Request body is not valid JSON", "invalid_json");
  }
}
