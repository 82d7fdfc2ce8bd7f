/**
 * `GET /v1/usage`: the calling key's ledger, summed by path and by UTC day (and by both), with the early-exit
 * counts and the key's budget; `GET /v1/usage/requests`: its latest ledger rows; `GET /v1/usage/export.csv`: every
 * ledger row of a period as CSV (columns in USAGE_CSV_COLUMNS).
 */
import { z } from "zod";
import { MODES, PATHS } from "../paths.js";

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
    by_day_path: z
      .array(UsageTotalsSchema.extend({ day: z.string(), path: z.enum(PATHS) }))
      .meta({ description: "One entry per UTC day and path that has requests, by day then path." }),
    early_exit: z
      .object({
        eligible: z.number().int().nonnegative().meta({
          description: "Requests to stitch-sgl that ran a model (not answered from the cache).",
        }),
        exited: z.number().int().nonnegative().meta({ description: "Of those, answered by the small model alone." }),
      })
      .meta({ description: "Small-model early exit (SEE) in the period: the share is exited / eligible." }),
    budget: z
      .object({
        limit_usd: z.number().nonnegative().nullable().meta({ description: "The key's budget; null = unlimited." }),
        spent_usd: z.number().nonnegative().meta({ description: "Spent by the key over its whole life." }),
        left_usd: z
          .number()
          .nonnegative()
          .nullable()
          .meta({ description: "limit - spent (not below 0); null = unlimited." }),
      })
      .meta({ description: "The key's budget now (not limited to the period)." }),
  })
  .meta({ id: "UsageReport" });
export type UsageReport = z.infer<typeof UsageReportSchema>;

export const UsageRequestsQuerySchema = UsageQuerySchema.extend({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(20)
    .meta({ description: "How many of the latest requests (1-100, default 20)." }),
});

/** One ledger row as the key's owner sees it. */
export const UsageRequestSchema = z
  .object({
    request_id: z.string(),
    created: z.string().meta({ description: "When it was billed (ISO 8601, UTC)." }),
    day: z.string(),
    path: z.enum(PATHS),
    mode: z.enum(MODES),
    model: z.string(),
    cost: z.number().nonnegative().meta({ description: "US dollars." }),
    accelerator_ms: z.object({ small: z.number().nonnegative(), large: z.number().nonnegative() }),
    gpu_class: z.object({ small: z.string().nullable(), large: z.string().nullable() }),
    visual_tokens: z.object({ total: z.number().int().nonnegative(), kept: z.number().int().nonnegative() }),
    prompt_tokens: z.number().int().nonnegative(),
    cached_tokens: z
      .number()
      .int()
      .nonnegative()
      .meta({ description: "Of the prompt tokens, those a cache served (the answer's cached_tokens)." }),
    completion_tokens: z.number().int().nonnegative(),
  })
  .meta({ id: "UsageRequest" });
export type UsageRequest = z.infer<typeof UsageRequestSchema>;

export const UsageRequestListSchema = z
  .object({ object: z.literal("list"), data: z.array(UsageRequestSchema) })
  .meta({ id: "UsageRequestList" });
export type UsageRequestList = z.infer<typeof UsageRequestListSchema>;

/** The columns of `GET /v1/usage/export.csv`, in order (one row per billed request, oldest first). */
export const USAGE_CSV_COLUMNS = [
  "request_id",
  "created",
  "day",
  "path",
  "mode",
  "model",
  "cost_usd",
  "accelerator_ms_small",
  "accelerator_ms_large",
  "gpu_class_small",
  "gpu_class_large",
  "visual_tokens_total",
  "visual_tokens_kept",
  "prompt_tokens",
  "cached_tokens",
  "completion_tokens",
] as const;
