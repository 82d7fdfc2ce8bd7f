/** Budgets (a cap: 402 before any work) and per-key rate limits (429 + Retry-After), both before anything that costs. */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { TokenBucket } from "../src/account/bucket.js";
import {
  ADMIN,
  accountStub,
  ask,
  chatBody,
  createKey,
  drainLedger,
  edge,
  holdingUsage,
  holdUsd,
  ledgerRows,
  scenario,
  stubCalls,
} from "./helpers.js";

const nocache = { "x-stitch-cache-bypass": "1" };

/**
 * Every request costs a flat 0.01 $ (no accelerator rate), so its worst case, what it holds before any work, is its
 * price: a budget of n × 0.01 $ answers at most n requests, however many run at once.
 */
const FLAT_PRICES = {
  PRICE_TABLE: JSON.stringify({
    request_fee_usd: { cache: 0.01, small: 0.01, large: 0.01 },
    accelerator_usd_per_second: { default: 0 },
  }),
};
const flat = (scenarioName = "ok") => ({ ...scenario(scenarioName), ...FLAT_PRICES });

describe("budget", () => {
  it("refuses a key with a zero budget before any work", async () => {
    const { id, key } = await createKey({ budget_usd: 0 });
    const res = await ask(key, chatBody());
    expect([res.status, res.json.error.type, res.json.error.code]).toEqual([402, "billing_error", "budget_exceeded"]);
    expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await ledgerRows(id)).toHaveLength(0);
  });

  it("refuses before any work a request whose worst case the budget left cannot cover", async () => {
    const { id, key } = await createKey({ budget_usd: holdUsd() * 0.99 });
    const res = await ask(key, chatBody());
    expect([res.status, res.json.error.code]).toEqual([402, "budget_exceeded"]);
    expect(res.json.error.message).toMatch(/may cost up to/);
    expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await ledgerRows(id)).toHaveLength(0);
  });

  it("refuses once spend and a hold would pass the budget, cache hits included, and again after a raise", async () => {
    const { id, key } = await createKey({ budget_usd: holdUsd() + 0.0001 });
    const body = chatBody();
    expect((await ask(key, body)).status).toBe(200); // ~0.0002 $: no room for another hold now
    const refused = await ask(key, body);
    expect(refused.status).toBe(402);
    expect(await ledgerRows(id)).toHaveLength(1);
    await edge(`/admin/keys/${id}`, { method: "PATCH", headers: ADMIN, body: JSON.stringify({ budget_usd: 1 }) });
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("is a cap under concurrency: 8 parallel clients on a 3-request budget get 3 answers, the rest 402 before any work", async () => {
    const { id, key } = await createKey({ budget_usd: 0.035 });
    const replies = await holdingUsage(() =>
      Promise.all(Array.from({ length: 8 }, () => ask(key, chatBody(), nocache, flat("slow")))),
    );
    const answered = replies.filter((r) => r.status === 200);
    const refused = replies.filter((r) => r.status === 402);
    expect([answered.length, refused.length]).toEqual([3, 5]);
    for (const r of refused) expect(await stubCalls(r.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await accountStub(id).spent(0)).toBe(30_000_000); // 3 × 0.01 $: never past the 0.035 $ budget
    await drainLedger(id);
    expect(await ledgerRows(id)).toHaveLength(3);
  });

  it("releases a failed request's hold at once: the budget's room comes back without waiting for it to lapse", async () => {
    const { key } = await createKey({ budget_usd: 0.01 });
    const failed = await ask(key, chatBody(), nocache, flat("status-500"));
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect((await ask(key, chatBody(), nocache, flat())).status).toBe(200);
    expect((await ask(key, chatBody(), nocache, flat())).status).toBe(402); // its 0.01 $ is spent
  });

  it("clamps a charge to its hold, so a function reporting more than its deadline allows cannot pass the budget", async () => {
    // Fee 0.01 $ and 0.001 $/s: the hold is 0.01 $ + 60 s (the deadline) × 0.001 $/s + 1 nano (rounding) =
    // 0.070000001 $; the stub claims 600 s.
    const { id, key } = await createKey({ budget_usd: 0.070000001 });
    const pricey = {
      ...scenario("overreport"),
      PRICE_TABLE: JSON.stringify({
        request_fee_usd: { cache: 0.01, small: 0.01, large: 0.01 },
        accelerator_usd_per_second: { default: 0.001 },
      }),
      SMALL_FUNCTION_TIMEOUT_MS: "60000",
    };
    const res = await ask(key, chatBody(), nocache, pricey);
    expect(res.status).toBe(200);
    expect(res.json.stitch.cost).toBeCloseTo(0.070000001, 10);
    expect(await accountStub(id).spent(0)).toBe(70_000_001);
  });

  it("takes the rate limit and the budget before fetching an image: a refused key's https: image is never fetched", async () => {
    const limited = await createKey({ rate_limit_per_minute: 1 });
    await ask(limited.key, chatBody(), nocache);
    // A private host would be refused (400) by the fetch's own checks if it were reached; the order makes it 429.
    const privateImage = chatBody({ image: "https://127.0.0.1/a.png" });
    expect((await ask(limited.key, privateImage, nocache)).status).toBe(429);
    const broke = await createKey({ budget_usd: 0 });
    expect((await ask(broke.key, privateImage, nocache)).status).toBe(402);
  });
});

describe("rate limit", () => {
  it("answers 429 with Retry-After past the key's limit, and bills nothing for it", async () => {
    const { id, key } = await createKey({ rate_limit_per_minute: 2 });
    const ok1 = await ask(key, chatBody(), nocache);
    expect(ok1.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(ok1.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    expect((await ask(key, chatBody(), nocache)).status).toBe(200);
    const limited = await ask(key, chatBody(), nocache);
    expect([limited.status, limited.json.error.type, limited.json.error.code]).toEqual([
      429,
      "rate_limit_error",
      "rate_limit_exceeded",
    ]);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get("retry-after"))).toBeLessThanOrEqual(30);
    expect(await stubCalls(limited.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await ledgerRows(id)).toHaveLength(2);
  });

  it("limits each key separately, with the configured default", async () => {
    const limited = await createKey({ rate_limit_per_minute: 1 });
    const other = await createKey();
    await ask(limited.key, chatBody(), nocache);
    expect((await ask(limited.key, chatBody(), nocache)).status).toBe(429);
    const res = await ask(other.key, chatBody(), nocache);
    expect(res.headers.get("x-ratelimit-limit-requests")).toBe(env.RATE_LIMIT_PER_MINUTE);
  });

  it("refills the bucket continuously", () => {
    const bucket = new TokenBucket();
    const t0 = 1_000_000;
    expect(bucket.take(6, t0)).toMatchObject({ allowed: true, remaining: 5 });
    for (let i = 0; i < 5; i++) bucket.take(6, t0);
    expect(bucket.take(6, t0)).toMatchObject({ allowed: false, retryAfterSeconds: 10 });
    expect(bucket.take(6, t0 + 10_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(bucket.take(6, t0 + 10_000 + 120_000)).toMatchObject({ allowed: true, remaining: 5 });
  });
});
