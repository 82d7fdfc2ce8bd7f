/**
 * What the Worker is given (wrangler.toml `[vars]`, secrets, D1, the per-key Durable Object, the usage queue)
 * and what each request carries through the middlewares (`c.var`).
 */

import type { KeyAccount } from "./account/key-account.js";
import type { ApiKeyRecord } from "./auth/keys-db.js";
import type { Config } from "./config.js";
import type { LedgerMessage } from "./ledger/ledger.js";

export interface Env {
  DB: D1Database;
  /** Per key: its account (rate limit, spend and holds, the usage outbox; account/key-account.ts). */
  ACCOUNTS: DurableObjectNamespace<KeyAccount>;
  /** The usage queue: each key's Durable Object sends its outbox to it; this Worker consumes it (`queue` in index.ts) into the D1 ledger. */
  LEDGER: Queue<LedgerMessage>;
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
  /** Seconds an isolate serves a key record from its cache (0 = off): the bound on honouring a revocation. */
  KEY_CACHE_TTL_SECONDS?: string;
  /** Ms a key's first usage record waits in its Durable Object's outbox for others (account/outbox.ts). */
  USAGE_FLUSH_DELAY_MS?: string;
  /** Ms a sent usage record waits for the consumer's confirmation before its object writes D1 itself. */
  USAGE_CONFIRM_AFTER_MS?: string;
  /** Shadow escalation (shadow/calibration.ts): the target disagreement of early exits; unset: the offline threshold. */
  SHADOW_TARGET?: string;
  SHADOW_MIN_SAMPLES?: string;
  SHADOW_WINDOW?: string;
  SHADOW_STEP?: string;
  SHADOW_REFRESH_MS?: string;
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
