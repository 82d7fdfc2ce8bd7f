/**
 * The price of one request: the path's request fee plus, for every function that
 * ran, its accelerator seconds times the rate of its GPU class. Integer nano-dollars
 * (1e-9 USD) so that sums in the ledger are exact.
 */

import { z } from "zod";
import { type AnswerPath, type Metering, ownValue } from "../../../shared/index.js";

const Usd = z.number().nonnegative();

export const DEFAULT_PRICES = {
  request_fee_usd: { cache: 0.00002, small: 0.0002, large: 0.0005 },
  accelerator_usd_per_second: { default: 0.0006, cpu: 0.0001 },
};

export const PriceTableSchema = z
  .object({
    request_fee_usd: z.object({ cache: Usd, small: Usd, large: Usd }),
    /** Rate per GPU class reported in each function's metering; `default` prices unknown classes. */
    accelerator_usd_per_second: z
      .record(z.string(), Usd)
      .refine((rates) => Object.hasOwn(rates, "default"), "needs a `default` rate"),
  })
  .default(DEFAULT_PRICES);
export type PriceTable = z.infer<typeof PriceTableSchema>;

export interface FunctionMetering {
  small: Metering | null;
  large: Metering | null;
}

const NANOS_PER_USD = 1e9;

export function priceRequest(prices: PriceTable, path: AnswerPath, metering: FunctionMetering): number {
  let nanos = Math.round(prices.request_fee_usd[path] * NANOS_PER_USD);
  if (path === "cache") return nanos;
  for (const m of [metering.small, metering.large]) {
    if (!m) continue;
    // The class is the function's word: looked up as an own key only (a class named `toString` is unknown).
    const rates = prices.accelerator_usd_per_second;
    const rate = ownValue(rates, m.gpu_class) ?? ownValue(rates, "default") ?? 0;
    nanos += Math.round((m.accelerator_ms / 1000) * rate * NANOS_PER_USD);
  }
  return nanos;
}

export const nanosToUsd = (nanos: number): number => nanos / NANOS_PER_USD;
export const usdToNanos = (usd: number): number => Math.round(usd * NANOS_PER_USD);
