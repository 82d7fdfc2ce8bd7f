import { describe, expect, it } from "vitest";
import { meteringOf } from "../../../shared/testing.js";
import { type PriceTable, PriceTableSchema, priceRequest } from "./price.js";

const prices: PriceTable = {
  request_fee_usd: { cache: 0.00001, small: 0.0001, large: 0.0004 },
  accelerator_usd_per_second: { default: 0.001, cpu: 0.0002, a10g: 0.0005 },
};
const metering = meteringOf;

describe("priceRequest", () => {
  it("charges the path fee plus accelerator seconds at each function's class rate", () => {
    // 100000 + 12 ms × 0.0002 $/s = 2400 nanos
    expect(priceRequest(prices, "small", { small: metering(12, "cpu"), large: null })).toBe(100_000 + 2_400);
    // 400000 + 12 ms cpu (2400) + 40 ms a10g (20000)
    expect(priceRequest(prices, "large", { small: metering(12, "cpu"), large: metering(40, "a10g") })).toBe(
      400_000 + 2_400 + 20_000,
    );
  });
  it("prices an unknown GPU class at the default rate", () => {
    expect(priceRequest(prices, "small", { small: metering(1000, "tpu9"), large: null })).toBe(100_000 + 1_000_000);
  });
  it("charges a cache hit its fee only", () => {
    expect(priceRequest(prices, "cache", { small: metering(1000, "cpu"), large: null })).toBe(10_000);
  });
  it("requires a default rate", () => {
    expect(PriceTableSchema.safeParse({ ...prices, accelerator_usd_per_second: { cpu: 1 } }).success).toBe(false);
  });
});
