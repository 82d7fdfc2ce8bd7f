/** The ledger (one row per billed request id), usage totals, and Idempotency-Key. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, edge, ledgerRows, scenario, stubCalls, stubLastCall } from "./helpers.js";

/** A price table of this test's own, so the expected prices below are worked out by hand, not by the code's formula. */
const PRICES = {
  PRICE_TABLE: JSON.stringify({
    request_fee_usd: { cache: 0.00001, small: 0.0002, large: 0.0005 },
    accelerator_usd_per_second: { default: 0.001, cpu: 0.0001, a10g: 0.0003 },
  }),
};
const requestIdOf = (res: { headers: Headers }) => res.headers.get("x-request-id") ?? "";

describe("ledger", () => {
  it("writes one row per request with the path, metering and price", async () => {
    const { id, key } = await createKey();
    const small = await ask(key, chatBody(), {}, PRICES);
    const large = await ask(
      key,
      chatBody({ question: "please escalate: what digit is on the red square?" }),
      {},
      PRICES,
    );
    expect(small.headers.get("x-stitch-path")).toBe("small");
    expect(large.headers.get("x-stitch-path")).toBe("large");
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(2);
    const [smallRow, largeRow] = rows;
    // Stub metering: small 12 ms on cpu; large 40 ms on a10g keeping 23 of 64 visual tokens.
    // small: $0.0002 + 0.012 s × $0.0001/s = $0.0002012; large: $0.0005 + $0.0000012 + 0.04 s × $0.0003/s = $0.0005132.
    const smallPrice = 0.0002012;
    const largePrice = 0.0005132;
    expect(smallRow).toMatchObject({
      request_id: requestIdOf(small),
      path: "small",
      mode: "sgl",
      model: "stitch-sgl",
      accelerator_ms_small: 12,
      accelerator_ms_large: 0,
      gpu_class_small: "cpu",
      visual_tokens_total: 64,
      visual_tokens_kept: 64,
      prompt_tokens: 80,
      cached_tokens: 0,
      price_nanos: 201_200,
    });
    expect(largeRow).toMatchObject({
      request_id: requestIdOf(large),
      path: "large",
      accelerator_ms_small: 12,
      accelerator_ms_large: 40,
      gpu_class_large: "a10g",
      visual_tokens_kept: 23,
      prompt_tokens: 84,
      cached_tokens: 0,
      completion_tokens: 2,
      price_nanos: 513_200,
    });
    expect(small.json.stitch.cost).toBeCloseTo(smallPrice, 12);
    expect(large.json.stitch.cost).toBeCloseTo(largePrice, 12);
    expect(large.json.stitch).toMatchObject({
      path: "large",
      decision_score: 0.4,
      exit_threshold: 0.6,
      visual_tokens: { total: 64, kept: 23 },
      accelerator_ms: { small: 12, large: 40 },
    });
    // The answering (large) model's tokens: 64 visual tokens of its 84-token prompt.
    expect(large.json.usage).toEqual({
      prompt_tokens: 84,
      completion_tokens: 2,
      total_tokens: 86,
      prompt_tokens_details: { cached_tokens: 0, image_tokens: 64, text_tokens: 20 },
    });
  });

  it("sends the method's parameters to the small function, signed", async () => {
    const { key } = await createKey();
    const res = await ask(
      key,
      chatBody({
        model: "stitch-sgp",
        max_tokens: 5,
        stitch: { retention: 0.09, prune_layer: 2, exit_threshold: 0.7, fallback: "small" },
      }),
    );
    const call = await stubLastCall(requestIdOf(res));
    expect(call?.request).toMatchObject({
      request_id: requestIdOf(res),
      mode: "sgp",
      max_tokens: 5,
      retention: 0.09,
      prune_layer: 2,
      exit_threshold: 0.7,
      fallback: "small",
      stream: false,
      messages: [
        {
          role: "user",
          content: [{ type: "text", text: "what colour is the circle?" }, { type: "image" }],
        },
      ],
    });
    expect(call?.request.image).toMatchObject({ media_type: "image/png" });
    const deadline = Number(call?.deadline);
    expect(deadline).toBeGreaterThan(Date.now());
    expect(deadline).toBeLessThanOrEqual(Date.now() + Number(env.SMALL_FUNCTION_TIMEOUT_MS));
  });

  it("reports usage by path and by day equal to the ledger", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    await ask(key, body);
    await ask(key, body); // cache hit
    await ask(key, chatBody({ question: "escalate" }));
    await ask(key, chatBody({ model: "gpt-9" })); // refused: not billed
    const usage = await edge("/v1/usage", { headers: { authorization: `Bearer ${key}` } });
    expect(usage.status).toBe(200);
    const rows = await ledgerRows(id);
    const sum = (pick: (r: Record<string, unknown>) => number) => rows.reduce((acc, r) => acc + pick(r), 0);
    expect(usage.json.totals).toMatchObject({
      requests: 3,
      cache_hits: 1,
      accelerator_ms: {
        small: sum((r) => r.accelerator_ms_small as number),
        large: sum((r) => r.accelerator_ms_large as number),
      },
    });
    expect(usage.json.totals.cost).toBeCloseTo(sum((r) => r.price_nanos as number) / 1e9, 12);
    expect(usage.json.by_path.map((p: { path: string; requests: number }) => [p.path, p.requests])).toEqual([
      ["cache", 1],
      ["large", 1],
      ["small", 1],
    ]);
    const today = new Date().toISOString().slice(0, 10);
    expect(usage.json.by_day).toHaveLength(1);
    expect(usage.json.by_day[0]).toMatchObject({ day: today, requests: 3, cache_hits: 1 });
    const spent = await env.DB.prepare("SELECT spent_nanos FROM api_keys WHERE id = ?")
      .bind(id)
      .first<number>("spent_nanos");
    expect(spent).toBe(sum((r) => r.price_nanos as number));
  });

  it("filters usage by date range and checks the range", async () => {
    const { key } = await createKey();
    await ask(key, chatBody());
    const auth = { authorization: `Bearer ${key}` };
    expect((await edge("/v1/usage?from=2001-01-01&to=2001-12-31", { headers: auth })).json.totals.requests).toBe(0);
    expect((await edge("/v1/usage?from=yesterday", { headers: auth })).status).toBe(400);
    expect((await edge("/v1/usage?from=2030-01-02&to=2030-01-01", { headers: auth })).status).toBe(400);
  });

  it("shows each key only its own usage", async () => {
    const a = await createKey();
    const b = await createKey();
    await ask(a.key, chatBody());
    expect((await edge("/v1/usage", { headers: { authorization: `Bearer ${b.key}` } })).json.totals.requests).toBe(0);
  });
});

describe("Idempotency-Key", () => {
  it("returns the first result to a retry with the same body and bills once", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    const headers = { "idempotency-key": "order-42" };
    const first = await ask(key, body, headers);
    const retry = await ask(key, body, headers);
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual(first.json);
    expect(retry.headers.get("x-stitch-idempotent-replay")).toBe("true");
    expect(await stubCalls(requestIdOf(retry))).toBe(0);
    expect(await ledgerRows(id)).toHaveLength(1);
  });

  it("answers 409 when the key is reused with another body", async () => {
    const { id, key } = await createKey();
    await ask(key, chatBody(), { "idempotency-key": "k1" });
    const other = await ask(key, chatBody(), { "idempotency-key": "k1" });
    expect([other.status, other.json.error.code]).toEqual([409, "idempotency_key_reused"]);
    expect(await ledgerRows(id)).toHaveLength(1);
  });

  it("answers 409 to a duplicate while the first is in flight", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    const headers = { "idempotency-key": "slow-1" };
    const first = ask(key, body, headers, scenario("slow"));
    // Wait until the first request holds its reservation (the slow function then answers after 1.5 s).
    const pending = env.DB.prepare("SELECT state FROM idempotency WHERE key_id = ? AND idem_key = ?").bind(
      id,
      "slow-1",
    );
    while ((await pending.first<string>("state")) !== "pending")
      await new Promise((resolve) => setTimeout(resolve, 20));
    const duplicate = await ask(key, body, headers, scenario("slow"));
    expect([duplicate.status, duplicate.json.error.code]).toEqual([409, "idempotency_in_flight"]);
    expect(duplicate.headers.get("retry-after")).toBe("1");
    expect((await first).status).toBe(200);
    expect(await ledgerRows(id)).toHaveLength(1);
  });

  it("releases the reservation when the request fails, so a retry runs and is billed once", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    const headers = { "idempotency-key": "retry-after-failure" };
    expect((await ask(key, body, headers, scenario("status-500"))).status).toBe(502);
    const pending = await env.DB.prepare("SELECT COUNT(*) AS n FROM idempotency WHERE key_id = ?")
      .bind(id)
      .first<number>("n");
    expect(pending).toBe(0);
    const retry = await ask(key, body, headers);
    expect(retry.status).toBe(200);
    expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull();
    expect(await ledgerRows(id)).toHaveLength(1);
  });

  it("scopes keys per API key", async () => {
    const a = await createKey();
    const b = await createKey();
    await ask(a.key, chatBody(), { "idempotency-key": "same" });
    expect((await ask(b.key, chatBody(), { "idempotency-key": "same" })).status).toBe(200);
  });
});

describe("when D1 fails", () => {
  /**
   * The real database, except that storing the idempotent result (the one D1 write left on the answer path, for
   * requests with an Idempotency-Key) throws, as a write that did not commit.
   */
  const failingCompletion = (): D1Database =>
    new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") {
          return (sql: string) =>
            sql.startsWith("UPDATE idempotency SET state = 'done'")
              ? {
                  bind: () => ({ run: () => Promise.reject(new Error("D1_ERROR: disk I/O error at /var/lib/secret")) }),
                }
              : target.prepare(sql);
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });

  it("bills nothing, leaves no reservation and leaks nothing", async () => {
    const { id, key } = await createKey();
    const res = await ask(key, chatBody(), { "idempotency-key": "d1-down" }, { DB: failingCompletion() });
    expect(res.status).toBe(500);
    expect(res.json.error).toMatchObject({
      type: "server_error",
      code: "internal_error",
      message: "Internal server error",
    });
    expect(res.text).not.toContain("secret");
    expect(await stubCalls(requestIdOf(res))).toBe(1); // the work was done, and is not billed
    expect(await ledgerRows(id)).toHaveLength(0);
    const row = await env.DB.prepare("SELECT spent_nanos FROM api_keys WHERE id = ?")
      .bind(id)
      .first<number>("spent_nanos");
    expect(row).toBe(0);
    // The retry with the same key runs (and is billed once) once D1 is back.
    expect((await ask(key, chatBody(), { "idempotency-key": "d1-down" })).status).toBe(200);
    expect(await ledgerRows(id)).toHaveLength(1);
  });
});
