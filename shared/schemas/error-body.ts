/** The OpenAI-style error object every HTTP app returns (see `toErrorResponse` in ../errors.ts). */
import { z } from "zod";
import type { ErrorBody } from "../errors.js";

export const ErrorBodySchema = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      code: z.string(),
      param: z.string().nullable(),
      request_id: z.string().optional(),
    }),
  })
  .meta({ id: "Error" });

/**
 * The one reading of an error body received over HTTP (a function's non-2xx answer or an SSE `error` event): the
 * OpenAI error object, or null for anything else. `fromErrorBody` (../errors.ts) then rebuilds the typed error.
 */
export function parseErrorBody(value: unknown): ErrorBody | null {
  const parsed = ErrorBodySchema.safeParse(value);
  return parsed.success ? (parsed.data as ErrorBody) : null;
}
