import type { z } from "zod";
import { InvalidRequestError, ownValue, quoted } from "../../../shared/index.js";

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
