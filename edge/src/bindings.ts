/**
 * What the Worker is given (wrangler.toml `[vars]`, secrets, D1, the rate limiter)
 * and what each request carries through the middlewares (`c.var`).
 */

import type { ApiKeyRecord } from "./auth/keys-db.js";
import type { Config } from "./config.js";
import type { RateLimiter } from "./rate-limit/rate-limiter.js";

export interface Env {
  DB: D1Database;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  /** Secret: signs every call to the small function. */
  INTERNAL_SIGNING_SECRET: string;
  /** Secret: guards /admin; the admin API is off when unset. */
  ADMIN_SECRET?: string;
  SMALL_FUNCTION_URL?: string;
  SMALL_FUNCTION_TIMEOUT_MS?: string;
  RATE_LIMIT_PER_MINUTE?: string;
  MAX_BODY_BYTES?: string;
  MAX_IMAGE_BYTES?: string;
  MAX_IMAGES?: string;
  IMAGE_FETCH_TIMEOUT_MS?: string;
  CACHE_DEFAULT_TTL_SECONDS?: string;
  CACHE_MAX_TTL_SECONDS?: string;
  IDEMPOTENCY_TTL_SECONDS?: string;
  /** JSON (string or object): see `PriceTableSchema`. */
  PRICE_TABLE?: string | object;
}

export interface Variables {
  requestId: string;
  config: Config;
  apiKey: ApiKeyRecord;
}

export interface AppEnv {
  Bindings: Env;
  Variables: Variables;
}
