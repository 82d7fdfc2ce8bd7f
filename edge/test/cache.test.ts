/** The answer cache: key parts, tenant scopes, controls, and billing of hits. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, dataUrl, ledgerRows, scenario, stubCalls, uniquePng } from "./helpers.js";

const PRICES = JSON.parse(env.PRICE_TABLE as string);
const requestIdOf = (res: { headers: Headers }) => res.headers.get("x-request-id") ?? "";

describe("answer cache", () => {
  it("misses, then hits on the repeat: no GPU call, billed at the cache price", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    const first = await ask(key, body);
    expect(first.headers.get("x-stitch-cache")).toBe("MISS");
    expect(first.json.stitch.cache).toBe("MISS");
    const second = await ask(key, body);
    expect(second.status).toBe(200);
    expect(second.headers.get("x-stitch-cache")).toBe("HIT");
    expect(second.headers.get("x-stitch-path")).toBe("cache");
    expect(second.json.choices[0].message.content).toBe(first.json.choices[0].message.content);
    expect(second.json.stitch).toMatchObject({
      path: "cache",
      cache: "HIT",
      accelerator_ms: { small: 0, large: 0 },
      cost: PRICES.request_fee_usd.cache,
    });
    expect(second.json.stitch.visual_tokens).toEqual(first.json.stitch.visual_tokens);
    expect(await stubCalls(requestIdOf(second))).toBe(0);
    const rows = await ledgerRows(id);
    expect(rows.map((r) => r.path)).toEqual(["small", "cache"]);
    expect(rows[1]?.price_nanos).toBe(Math.round(PRICES.request_fee_usd.cache * 1e9));
  });

  it("keys the question exactly as the model reads it: spacing, case and Unicode form each miss", async () => {
    const { key } = await createKey();
    const image = dataUrl(uniquePng());
    await ask(key, chatBody({ image, question: "What colour is the circle?" }));
    for (const question of [
      "What colour is the CIRCLE?",
      "  What colour  is   the circle? ",
      "Ｗｈａｔ colour is the circle?",
    ]) {
      expect((await ask(key, chatBody({ image, question }))).headers.get("x-stitch-cache"), question).toBe("MISS");
    }
    const res = await ask(key, chatBody({ image, question: "What colour is the circle?" }));
    expect(res.headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("misses when the image, question, model or an answer-changing parameter differs", async () => {
    const { key } = await createKey();
    const image = dataUrl(uniquePng());
    await ask(key, chatBody({ image }));
    for (const change of [
      { image: dataUrl(uniquePng()) },
      { question: "what shape is left of the circle?" },
      { model: "stitch-large" },
      { max_tokens: 3 },
      { stitch: { retention: 0.2 } },
      { stitch: { prune_layer: 2 } },
      { stitch: { exit_threshold: 0.3 } },
    ]) {
      const res = await ask(key, chatBody({ image, ...change }));
      expect(res.headers.get("x-stitch-cache"), JSON.stringify(change)).toBe("MISS");
    }
    // Not answer-changing: the fallback policy and ignored OpenAI knobs.
    expect(
      (await ask(key, chatBody({ image, temperature: 0, seed: 7, stitch: { fallback: "small" } }))).headers.get(
        "x-stitch-cache",
      ),
    ).toBe("HIT");
  });

  it("keeps one tenant's entries from another (per-key scope by default)", async () => {
    const alice = await createKey();
    const bob = await createKey();
    const body = chatBody();
    await ask(alice.key, body);
    expect((await ask(bob.key, body)).headers.get("x-stitch-cache")).toBe("MISS");
    expect((await ask(alice.key, body)).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("shares entries between keys that opted into the shared scope, and only those", async () => {
    const a = await createKey({ cache_scope: "shared" });
    const b = await createKey({ cache_scope: "shared" });
    const private_ = await createKey();
    const body = chatBody();
    await ask(a.key, body);
    expect((await ask(b.key, body)).headers.get("x-stitch-cache")).toBe("HIT");
    expect((await ask(private_.key, body)).headers.get("x-stitch-cache")).toBe("MISS");
  });

  it("bypasses by body or header: neither read nor written", async () => {
    const { key } = await createKey();
    const body = chatBody();
    const bypassed = await ask(key, { ...body, stitch: { cache: { bypass: true } } });
    expect(bypassed.headers.get("x-stitch-cache")).toBe("BYPASS");
    expect(bypassed.json.stitch.cache).toBe("BYPASS");
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("MISS");
    expect((await ask(key, body, { "x-stitch-cache-bypass": "true" })).headers.get("x-stitch-cache")).toBe("BYPASS");
    expect((await ask(key, body, { "cache-control": "no-cache" })).headers.get("x-stitch-cache")).toBe("BYPASS");
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("stores nothing with ttl 0 (body or header)", async () => {
    const { key } = await createKey();
    const body = chatBody({ stitch: { cache: { ttl: 0 } } });
    await ask(key, body);
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("MISS");
    const other = chatBody();
    await ask(key, other, { "x-stitch-cache-ttl": "0" });
    expect((await ask(key, other)).headers.get("x-stitch-cache")).toBe("MISS");
  });

  it("never caches a degraded answer", async () => {
    const { key } = await createKey();
    const body = chatBody({ stitch: { fallback: "small" } });
    expect((await ask(key, body, {}, scenario("degraded"))).json.stitch.degraded).toBe(true);
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("MISS");
  });

  it("caches streamed answers and replays hits as a stream", async () => {
    const { key } = await createKey();
    const body = chatBody({ stream: true });
    const first = await ask(key, body);
    expect(first.text).toContain("data: [DONE]");
    const hit = await ask(key, body);
    expect(hit.headers.get("x-stitch-cache")).toBe("HIT");
    expect(hit.headers.get("content-type")).toContain("text/event-stream");
    expect(hit.text).toContain('"path":"cache"');
    expect(hit.text.trim().endsWith("data: [DONE]")).toBe(true);
    expect((await ask(key, { ...body, stream: false })).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("misses after the model packs change version", async () => {
    const { key } = await createKey();
    const upgraded = { SMALL_FUNCTION_URL: `${env.TEST_UPGRADE_STUB_URL}/s/ok` };
    const body = chatBody();
    await ask(key, body, {}, upgraded);
    expect((await ask(key, body, {}, upgraded)).headers.get("x-stitch-cache")).toBe("HIT");
    // New packs are deployed. Until an answer from the function shows the new versions, lookups use the
    // versions the edge knows; the first miss teaches it, and from then on every old entry misses.
    await fetch(`${env.TEST_UPGRADE_STUB_URL}/__version?v=2`, { method: "POST" });
    expect((await ask(key, body, {}, upgraded)).headers.get("x-stitch-cache")).toBe("HIT");
    const fresh = await ask(key, chatBody(), {}, upgraded);
    expect(fresh.headers.get("x-stitch-cache")).toBe("MISS");
    expect((await ask(key, body, {}, upgraded)).headers.get("x-stitch-cache")).toBe("MISS");
    expect((await ask(key, body, {}, upgraded)).headers.get("x-stitch-cache")).toBe("HIT");
  });
});
