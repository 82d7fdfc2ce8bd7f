/** Budgets (402 before any work) and per-key rate limits (429 + Retry-After). */

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RateLimiter } from "../src/rate-limit/rate-limiter.js";
import { ADMIN, ask, chatBody, createKey, edge, ledgerRows, stubCalls } from "./helpers.js";

const nocache = { "x-stitch-cache-bypass": "1" };

describe("budget", () => {
  it("refuses a key with a zero budget before any work", async () => {
    const { id, key } = await createKey({ budget_usd: 0 });
    const res = await ask(key, chatBody());
    expect([res.status, res.json.error.type, res.json.error.code]).toEqual([402, "billing_error", "budget_exceeded"]);
    expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await ledgerRows(id)).toHaveLength(0);
  });

  it("refuses once spend reaches the budget, cache hits included, and again after a raise", async () => {
    const { id, key } = await createKey({ budget_usd: 0.0001 });
    const body = chatBody();
    expect((await ask(key, body)).status).toBe(200); // ~0.0002 $: over budget now
    const refused = await ask(key, body);
    expect(refused.status).toBe(402);
    expect(await ledgerRows(id)).toHaveLength(1);
    await edge(`/admin/keys/${id}`, { method: "PATCH", headers: ADMIN, body: JSON.stringify({ budget_usd: 1 }) });
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("HIT");
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

  it("refills the bucket continuously", async () => {
    const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName("bucket-unit"));
    await runInDurableObject(stub, (limiter: RateLimiter) => {
      const t0 = 1_000_000;
      expect(limiter.take(6, t0)).toMatchObject({ allowed: true, remaining: 5 });
      for (let i = 0; i < 5; i++) limiter.take(6, t0);
      expect(limiter.take(6, t0)).toMatchObject({ allowed: false, retryAfterSeconds: 10 });
      expect(limiter.take(6, t0 + 10_000)).toMatchObject({ allowed: true, remaining: 0 });
      expect(limiter.take(6, t0 + 10_000 + 120_000)).toMatchObject({ allowed: true, remaining: 5 });
    });
  });
});
