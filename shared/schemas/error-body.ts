/** The OpenAI-style error object every HTTP app returns (see `toErrorResponse` in ../errors.ts). */
import { z } from "zod";

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
