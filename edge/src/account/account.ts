/**
 * The edge's side of a key's account (key-account.ts): admission before any work (rate limit, then a hold of the
 * request's worst-case price against the key's budget), in one round trip to the key's object.
 */
import { BudgetExceededError, RateLimitError } from "../../../shared/index.js";
import type { TakeResult } from "../../../shared/token-bucket.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import type { Config } from "../config.js";
import { nanosToUsd } from "../price/price.js";
import type { KeyAccount } from "./key-account.js";
import { worstCasePriceNanos } from "./worst-case-price.js";

export type Accounts = DurableObjectNamespace<KeyAccount>;

export function accountOf(accounts: Accounts, keyId: string) {
  return accounts.get(accounts.idFromName(keyId));
}

/** What admission hands on: the rate-limit headers' figures, and the hold the request's charge must stay within. */
export interface Admitted {
  rate: TakeResult;
  /** The most this request may be charged (its hold), or null for an unlimited key. */
  holdNanos: number | null;
}

type KeyOf = Pick<ApiKeyRecord, "id" | "budget_nanos" | "spent_nanos" | "rate_limit_per_minute">;

/**
 * 429 with Retry-After when the key's bucket is empty; 402 when the key's spend, the holds of its requests in flight
 * and this request's worst case would pass its budget. Nothing is fetched, decoded or run before this passes.
 */
export async function admit(accounts: Accounts, key: KeyOf, requestId: string, config: Config): Promise<Admitted> {
  const limit = key.rate_limit_per_minute ?? config.rateLimitPerMinute;
  const holdNanos = key.budget_nanos === null ? null : worstCasePriceNanos(config);
  const now = Date.now();
  const hold =
    holdNanos === null || key.budget_nanos === null
      ? null
      : { nanos: holdNanos, budgetNanos: key.budget_nanos, seed: key.spent_nanos, expiresAt: now + holdTtlMs(config) };
  const { rate, budget } = await accountOf(accounts, key.id).admit(requestId, limit, hold, now);
  if (!rate.allowed) {
    throw new RateLimitError(`Rate limit of ${limit} requests per minute reached`, "rate_limit_exceeded", null, {
      retryAfter: rate.retryAfterSeconds,
    });
  }
  if (budget && !budget.allowed && key.budget_nanos !== null) {
    const usd = (nanos: number) => `$${nanosToUsd(nanos).toFixed(6)}`;
    throw new BudgetExceededError(
      `This key has spent ${usd(budget.spentNanos)} of its ${usd(key.budget_nanos)} budget, with ${usd(budget.heldNanos)} held by requests in flight; a request may cost up to ${usd(holdNanos ?? 0)}`,
      "budget_exceeded",
    );
  }
  return { rate, holdNanos };
}

/** A hold outlives the request's own deadlines (image fetch, then the small function, which bounds the large one). */
const holdTtlMs = (config: Config) => config.imageFetchTimeoutMs + config.smallFunctionTimeoutMs + 60_000;
