import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { meteringOf } from "../../../shared/testing.js";
import { type PriceTable, priceRequest } from "../price/price.js";
import { worstCasePriceNanos } from "./worst-case-price.js";

const prices: PriceTable = {
  request_fee_usd: { cache: 0.00002, small: 0.0002, large: 0.0005 },
  accelerator_usd_per_second: { default: 0.0006, cpu: 0.0001, h200: 0.0011 },
};
const config = { prices, smallFunctionTimeoutMs: 30_000 };
const metering = meteringOf;

describe("worstCasePriceNanos", () => {
  it("is the highest fee plus the whole deadline at the highest rate, and one nano for rounding", () => {
    // 0.0005 $ + 30 s × 0.0011 $/s + 1 nano
    expect(worstCasePriceNanos(config)).toBe(500_000 + 33_000_000 + 1);
  });

  it("bounds two parts that are both exact halves, each rounded up (a defect of the bound without its rounding nano)", () => {
    const small = (0.5 / 33e6) * config.smallFunctionTimeoutMs; // 0.5 nano-dollars at h200
    const price = priceRequest(prices, "large", {
      small: metering(small, "h200"),
      large: metering(config.smallFunctionTimeoutMs - small, "h200"),
    });
    expect(price).toBe(500_000 + 33_000_001);
    expect(price).toBeLessThanOrEqual(worstCasePriceNanos(config));
  });

  it("bounds a rate below a nano-dollar a second, which rounds to nothing per second but not over the deadline", () => {
    const tiny: PriceTable = { ...prices, accelerator_usd_per_second: { default: 0.3e-9 } };
    const price = priceRequest(tiny, "small", { small: metering(config.smallFunctionTimeoutMs, "cpu"), large: null });
    expect(price).toBe(200_000 + 9);
    expect(price).toBeLessThanOrEqual(worstCasePriceNanos({ ...config, prices: tiny }));
  });

  it("bounds the price of every answer that came back within the deadline, on any path and any GPU class", () => {
    const gpuClass = fc.constantFrom("cpu", "h200", "default", "unknown-class", "toString");
    fc.assert(
      fc.property(
        fc.constantFrom("cache" as const, "small" as const, "large" as const),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        gpuClass,
        gpuClass,
        (path, total, share, smallClass, largeClass) => {
          // The small and the large function's time are both spent inside the one deadline.
          const ms = total * config.smallFunctionTimeoutMs;
          const price = priceRequest(prices, path, {
            small: metering(ms * share, smallClass),
            large: path === "large" ? metering(ms * (1 - share), largeClass) : null,
          });
          expect(price).toBeLessThanOrEqual(worstCasePriceNanos(config));
        },
      ),
    );
  });

  it("is the fee alone when no accelerator time is charged (a budget of n fees answers n requests)", () => {
    const flat: PriceTable = { ...prices, accelerator_usd_per_second: { default: 0 } };
    expect(worstCasePriceNanos({ ...config, prices: flat })).toBe(500_000);
  });

  it("is tight: an answer using the whole deadline at the dearest class on the large path costs all but the rounding nano", () => {
    const whole = metering(config.smallFunctionTimeoutMs, "h200");
    expect(priceRequest(prices, "large", { small: null, large: whole })).toBe(worstCasePriceNanos(config) - 1);
  });
});
