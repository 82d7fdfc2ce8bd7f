/**
 * The isolate's memo in front of the Cache API (answer-cache.ts): a repeat is answered from memory, never past the
 * expiry its entry was stored with, and an entry read from the Cache API is memoised with the expiry stored beside it.
 */
import { describe, expect, it } from "vitest";
import { AnswerCache, answerUrl, type CachedAnswer, EXPIRES_HEADER } from "../src/cache/answer-cache.js";

const entry = (answer: string): CachedAnswer => ({
  answer,
  finish_reason: "stop",
  mode: "sgl",
  produced_by: "small",
  decision_score: 0.9,
  image_detail: "high",
  visual_tokens: { total: 64, kept: 64 },
  usage: { prompt_tokens: 70, completion_tokens: 1 },
  models: { small: "small@1", large: "large@1" },
});

/** The real Cache API, counting its reads. */
async function countedCache() {
  const real = await caches.open(`answer-memo-test-${crypto.randomUUID()}`);
  const counts = { match: 0 };
  const cache = new Proxy(real, {
    get(target, name) {
      if (name === "match") {
        return (...args: Parameters<Cache["match"]>) => {
          counts.match++;
          return target.match(...args);
        };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const pending: Promise<unknown>[] = [];
  const answers = new AnswerCache(cache, (p) => pending.push(p), "https://small.test");
  return { answers, cache: real, counts, settle: () => Promise.all(pending) };
}

describe("answer memo", () => {
  it("answers a stored key from memory until the expiry it was stored with, then asks the Cache API", async () => {
    const { answers, counts, settle } = await countedCache();
    const key = crypto.randomUUID();
    answers.store(key, entry("red"), 60, 1_000);
    await settle();
    expect(await answers.lookup(key, 1_000 + 59_999)).toMatchObject({ answer: "red" });
    expect(counts.match).toBe(0);
    await answers.lookup(key, 1_000 + 60_000);
    expect(counts.match).toBe(1);
  });

  it("memoises an entry read from the Cache API with the expiry stored beside it; without one, not at all", async () => {
    const { answers, cache, counts } = await countedCache();
    const [dated, undated] = [crypto.randomUUID(), crypto.randomUUID()];
    const now = Date.now();
    // Stored as another isolate would have stored them (its memo is not this one's); one in an older format.
    const put = (key: string, headers: Record<string, string>) =>
      cache.put(answerUrl(key), Response.json(entry(key), { headers: { "cache-control": "max-age=60", ...headers } }));
    await put(dated, { [EXPIRES_HEADER]: String(now + 30_000) });
    await put(undated, {});
    for (const at of [now, now + 1, now + 29_999])
      expect(await answers.lookup(dated, at)).toMatchObject({ answer: dated });
    expect(counts.match).toBe(1);
    await answers.lookup(dated, now + 30_000);
    expect(counts.match).toBe(2);
    for (const at of [now, now + 1]) expect(await answers.lookup(undated, at)).toMatchObject({ answer: undated });
    expect(counts.match).toBe(4);
  });

  it("stores nothing, in memory or the Cache API, at TTL 0", async () => {
    const { answers, counts, settle } = await countedCache();
    const key = crypto.randomUUID();
    answers.store(key, entry("green"), 0);
    await settle();
    expect(await answers.lookup(key)).toBeNull();
    expect(counts.match).toBe(1);
  });
});
