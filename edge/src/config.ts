/**
 * Typed configuration from the Worker's vars, checked once per env object:
 * defaults here, overridden by wrangler.toml `[vars]` (or the test's bindings).
 */

import { z } from "zod";
import { InternalError } from "../../shared/index.js";
import type { Env } from "./bindings.js";
import { PriceTableSchema } from "./price/price.js";

const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

const ConfigSchema = z.object({
  smallFunctionUrl: z.url({ protocol: /^https?$/ }).default("http://127.0.0.1:8701"),
  smallFunctionTimeoutMs: int(60_000, 1),
  signingSecret: z.string().min(16, "INTERNAL_SIGNING_SECRET must be at least 16 characters"),
  adminSecret: z.string().min(16).optional(),
  rateLimitPerMinute: int(60, 1),
  maxBodyBytes: int(8 * 1024 * 1024, 1024),
  maxImageBytes: int(4 * 1024 * 1024, 64),
  maxImages: int(1, 1),
  imageFetchTimeoutMs: int(5_000, 1),
  cacheDefaultTtlSeconds: int(86_400),
  cacheMaxTtlSeconds: int(7 * 86_400),
  idempotencyTtlSeconds: int(86_400, 60),
  /** How long an isolate trusts a cached key record: the bound on honouring a revocation made elsewhere. */
  keyCacheTtlSeconds: int(30),
  /** How long a key's first usage record waits for others before its outbox is sent (account/outbox.ts). */
  usageFlushDelayMs: int(1_000),
  /** How long a sent usage record waits for the consumer's confirmation before its object writes D1 itself. */
  usageConfirmAfterMs: int(120_000, 1_000),
  prices: PriceTableSchema,
  shadow: z.object({
    /** The operator's promise: most early exits that may disagree with the large model. Unset: the offline threshold. */
    target: z.coerce.number().gt(0).max(1).optional(),
    /** Samples needed before the threshold leaves the offline calibration's. */
    minSamples: int(200, 1),
    /** The threshold is computed from this many most recent samples of the pair (drift ages the old ones out). */
    window: int(2000, 1),
    /** A fixed-sequence candidate every this many exits. */
    step: int(20, 1),
    /** How long an isolate reuses a computed curve. */
    refreshMs: int(5_000),
  }),
});
export type Config = z.infer<typeof ConfigSchema>;

const parsed = new WeakMap<Env, Config>();

/** The checked configuration; a broken one is a 500 with a code, never a half-working edge. */
export function loadConfig(env: Env): Config {
  const known = parsed.get(env);
  if (known) return known;
  const result = ConfigSchema.safeParse({
    smallFunctionUrl: env.SMALL_FUNCTION_URL?.replace(/\/+$/, "") || undefined,
    smallFunctionTimeoutMs: env.SMALL_FUNCTION_TIMEOUT_MS,
    signingSecret: env.INTERNAL_SIGNING_SECRET,
    adminSecret: env.ADMIN_SECRET || undefined,
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    maxBodyBytes: env.MAX_BODY_BYTES,
    maxImageBytes: env.MAX_IMAGE_BYTES,
    maxImages: env.MAX_IMAGES,
    imageFetchTimeoutMs: env.IMAGE_FETCH_TIMEOUT_MS,
    cacheDefaultTtlSeconds: env.CACHE_DEFAULT_TTL_SECONDS,
    cacheMaxTtlSeconds: env.CACHE_MAX_TTL_SECONDS,
    idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_SECONDS,
    keyCacheTtlSeconds: env.KEY_CACHE_TTL_SECONDS,
    usageFlushDelayMs: env.USAGE_FLUSH_DELAY_MS,
    usageConfirmAfterMs: env.USAGE_CONFIRM_AFTER_MS,
    shadow: {
      target: env.SHADOW_TARGET || undefined,
      minSamples: env.SHADOW_MIN_SAMPLES,
      window: env.SHADOW_WINDOW,
      step: env.SHADOW_STEP,
      refreshMs: env.SHADOW_REFRESH_MS,
    },
    prices: typeof env.PRICE_TABLE === "string" ? safeJson(env.PRICE_TABLE) : env.PRICE_TABLE,
  });
  if (!result.success) {
    console.error("edge configuration invalid", z.prettifyError(result.error));
    throw new InternalError("Service misconfigured", "config_invalid");
  }
  parsed.set(env, result.data);
  return result.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
