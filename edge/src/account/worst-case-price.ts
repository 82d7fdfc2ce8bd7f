/**
 * The most one request can be charged, which a budgeted request holds before any work (account.ts): the highest
 * request fee of any path, plus the edge's deadline for the small function in accelerator seconds at the highest rate
 * of the price table. Why that bounds the real price: a request is charged only for an answer that came back within
 * that deadline; the small function's metered time and the large function's (called within the same deadline, one
 * after the other) are each time spent inside it, so their sum is at most the deadline; and every GPU class is
 * priced at most at the table's highest rate (an unknown one at `default`). The settlement still clamps the price to
 * the hold (settlement.ts), so a function that over-reports cannot push a key past its budget.
 */
import type { Config } from "../config.js";
import { usdToNanos } from "../price/price.js";

export function worstCasePriceNanos(config: Pick<Config, "prices" | "smallFunctionTimeoutMs">): number {
  const fee = Math.max(...Object.values(config.prices.request_fee_usd));
  const rate = Math.max(...Object.values(config.prices.accelerator_usd_per_second));
  // priceRequest rounds each function's part to the nearest nano-dollar, from the unrounded rate: two parts whose
  // exact sum is the whole deadline's cost can round to one nano above it (both exactly halves). Without a rate
  // there is nothing to round, and a flat price is its own bound.
  const rounding = rate > 0 ? 1 : 0;
  return usdToNanos(fee) + Math.ceil((config.smallFunctionTimeoutMs / 1000) * rate * 1e9) + rounding;
}
