import { BudgetExceededError } from "../../../shared/index.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import { nanosToUsd } from "../price/price.js";
import type { RateLimiter } from "../rate-limit/rate-limiter.js";

type BudgetOf = Pick<ApiKeyRecord, "budget_nanos" | "spent_nanos">;

/** 402 before any work when the key's spend has reached its budget (null = unlimited). */
export function assertWithinBudget(key: BudgetOf): void {
  if (key.budget_nanos !== null && key.spent_nanos >= key.budget_nanos) {
    throw new BudgetExceededError(
      `This key has spent $${nanosToUsd(key.spent_nanos).toFixed(6)} of its $${nanosToUsd(key.budget_nanos).toFixed(6)} budget`,
      "budget_exceeded",
    );
  }
}

/** The key's account: its spend counter in the per-key Durable Object (never D1 on the answer path). */
export function accountOf(limiter: DurableObjectNamespace<RateLimiter>, keyId: string) {
  return limiter.get(limiter.idFromName(keyId));
}

/**
 * The budget check against the exact spend in the key's Durable Object; an unlimited key is not checked (and
 * costs no round trip). Requests already past this check when the spend crosses the budget still finish and are
 * billed: the overshoot is at most the prices of the key's requests in flight at that moment.
 */
export async function admitBudget(limiter: DurableObjectNamespace<RateLimiter>, key: ApiKeyRecord): Promise<void> {
  if (key.budget_nanos === null) return;
  const spent = await accountOf(limiter, key.id).spent(key.spent_nanos);
  assertWithinBudget({ budget_nanos: key.budget_nanos, spent_nanos: spent });
}
