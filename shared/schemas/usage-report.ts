/** `GET /v1/usage`: the calling key's ledger, summed by path and by UTC day. */
import { z } from "zod";
import { PATHS } from "../paths.js";

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export const UsageQuerySchema = z.object({
  from: z
    .string()
    .regex(DAY, "YYYY-MM-DD")
    .optional()
    .meta({ description: "First UTC day, inclusive (default: 30 days ago)." }),
  to: z.string().regex(DAY, "YYYY-MM-DD").optional().meta({ description: "Last UTC day, inclusive (default: today)." }),
});

export const UsageTotalsSchema = z.object({
  requests: z.number().int().nonnegative(),
  cache_hits: z.number().int().nonnegative(),
  cost: z.number().nonnegative().meta({ description: "US dollars." }),
  accelerator_ms: z.object({ small: z.number().nonnegative(), large: z.number().nonnegative() }),
  visual_tokens: z.object({ total: z.number().int().nonnegative(), kept: z.number().int().nonnegative() }),
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
});
export type UsageTotals = z.infer<typeof UsageTotalsSchema>;

export const UsageReportSchema = z
  .object({
    object: z.literal("usage"),
    key_id: z.string(),
    from: z.string(),
    to: z.string(),
    totals: UsageTotalsSchema,
    by_path: z.array(UsageTotalsSchema.extend({ path: z.enum(PATHS) })),
    by_day: z.array(UsageTotalsSchema.extend({ day: z.string() })),
  })
  .meta({ id: "UsageReport" });
export type UsageReport = z.infer<typeof UsageReportSchema>;
