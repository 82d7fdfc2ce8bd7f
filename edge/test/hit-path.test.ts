/**
 * What the cache-hit path was made cheaper by (issue 17), pinned: the pack versions memoised per isolate, the
 * spend kept in the Durable Object's memory and old charges pruned once a minute, the budget check run beside a
 * data: image's intake (its refusal still first), and the hex of a hash.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { KeyAccount } from "../src/account/key-account.js";
import { CHARGE_MEMORY_MS } from "../src/account/spend.js";
import { AnswerCache, VERSIONS_MEMO_MS } from "../src/cache/answer-cache.js";
import { sha256Hex, toHex } from "../src/util/sha256.js";
import { ask, chatBody, createKey, ledgerRows, usageOf } from "./helpers.js";

/** A Cache that holds one versions entry and counts its reads. */
function countingCache(versions: { small: string; large: string } | null) {
  const calls = { match: 0, put: 0 };
  const cache = {
    match: async () => {
      calls.match++;
      return versions ? Response.json(versions) : undefined;
    },
    put: async () => {
      calls.put++;
    },
  } as unknown as Cache;
  return { cache, calls };
}

describe("pack versions, memoised per isolate", () => {
  it("reads the Cache API once per VERSIONS_MEMO_MS, and never memoises their absence", async () => {
    const source = `http://versions-${crypto.randomUUID()}`;
    const { cache, calls } = countingCache({ small: "s1", large: "l1" });
    const answers = new AnswerCache(cache, () => {}, source);
    const t0 = 1_000_000;
    expect(await answers.versions(t0)).toEqual({ small: "s1", large: "l1" });
    expect(await answers.versions(t0 + VERSIONS_MEMO_MS - 1)).toEqual({ small: "s1", large: "l1" });
    expect(calls.match).toBe(1);
    await answers.versions(t0 + VERSIONS_MEMO_MS);
    expect(calls.match).toBe(2);

    const empty = countingCache(null);
    const none = new AnswerCache(empty.cache, () => {}, `http://versions-${crypto.randomUUID()}`);
    expect(await none.versions(t0)).toBeNull();
    expect(await none.versions(t0 + 1)).toBeNull();
    expect(empty.calls.match).toBe(2);
  });

  it("uses versions this isolate learns at once, per small-function URL", async () => {
    const source = `http://versions-${crypto.randomUUID()}`;
    const { cache, calls } = countingCache({ small: "s1", large: "l1" });
    const pending: Promise<unknown>[] = [];
    const answers = new AnswerCache(cache, (p) => pending.push(p), source);
    expect(await answers.versions()).toEqual({ small: "s1", large: "l1" });
    answers.rememberVersions({ small: "s2", large: "l2" });
    expect(await answers.versions()).toEqual({ small: "s2", large: "l2" });
    await Promise.all(pending);
    expect(calls).toEqual({ match: 1, put: 1 });
    const other = new AnswerCache(cache, () => {}, `${source}/other`);
    expect(await other.versions()).toEqual({ small: "s1", large: "l1" });
  });
});

describe("the key's account in its Durable Object", () => {
  it("remembers a charge for at least CHARGE_MEMORY_MS, prunes it after, and keeps memory equal to storage", async () => {
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(`prune-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (account: KeyAccount, state) => {
      const t0 = 5_000_000_000;
      expect(account.charge(usageOf("req_1", 100), 0, t0)).toBe(100);
      expect(account.charge(usageOf("req_1", 100), 0, t0 + CHARGE_MEMORY_MS - 1)).toBe(100); // still remembered
      const later = t0 + CHARGE_MEMORY_MS + 60_001; // the once-a-minute prune has run since
      expect(account.charge(usageOf("req_2", 50), 0, later)).toBe(150);
      expect(account.charge(usageOf("req_1", 100), 0, later + 1)).toBe(250); // forgotten: a new charge
      account.refund("req_2");
      expect(account.spent(0)).toBe(200);
      const stored = state.storage.sql.exec<{ spent_nanos: number }>("SELECT spent_nanos FROM account").one();
      expect(stored.spent_nanos).toBe(200);
      const ids = state.storage.sql.exec<{ request_id: string }>("SELECT request_id FROM charges").toArray();
      expect(ids.map((r) => r.request_id)).toEqual(["req_1"]);
    });
  });
});

describe("the budget check beside the image intake", () => {
  it("still answers 402 first: before an invalid data: image's 400 and before any https: image is fetched", async () => {
    const { id, key } = await createKey({ budget_usd: 0 });
    for (const image of ["data:image/png;base64,@@@@", "https://localhost/a.png", "https://example.com/a.png"]) {
      const res = await ask(key, chatBody({ image }));
      expect([res.status, res.json.error.code], image).toEqual([402, "budget_exceeded"]);
    }
    expect(await ledgerRows(id)).toHaveLength(0);
  });

  it("answers a key within its budget as before: the image's own error, or the answer", async () => {
    const { key } = await createKey({ budget_usd: 1 });
    const bad = await ask(key, chatBody({ image: "data:image/png;base64,@@@@" }));
    expect([bad.status, bad.json.error.code]).toEqual([400, "invalid_image_base64"]);
    expect((await ask(key, chatBody())).status).toBe(200);
  });
});

describe("hex of a hash", () => {
  it("writes two lower-case digits per byte", async () => {
    expect(toHex(new Uint8Array([0, 1, 15, 16, 171, 255]))).toBe("00010f10abff");
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
