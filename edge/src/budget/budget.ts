import { BudgetExceededError } from "../../../shared/index.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import { nanosToUsd } from "../price/price.js";

/** 402 before any work when the key's spend has reached its budget (null = unlimited). */
export function assertWithinBudget(key: ApiKeyRecord): void {
  if (key.budget_nanos !== null && key.spent_nanos >= key.budget_nanos) {
    throw new BudgetExceededError(
      `This key has spent $${nanosToUsd(key.spent_nanos).toFixed(6)} of its $${nanosToUsd(key.budget_nanos).toFixed(6)} budget`,
      "budget_exceeded",
    );
  }
}
