/** Key records cached in the isolate: a cache hit waits on no D1 round trip; revocation within the stated bound. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { KeyCache } from "../src/auth/key-cache.js";
import type { ApiKeyRecord } from "../src/auth/keys-db.js";
import { getKeyCached } from "../src/auth/keys-db.js";
import { ADMIN, ask, chatBody, createKey, edge, ledgerRows } from "./helpers.js";

const record = (id: string): ApiKeyRecord => ({
  id,
  name: id,
  secret_hash: "0".repeat(64),
  created_at: 0,
  revoked_at: null,
  budget_nanos: null,
  spent_nanos: 0,
  rate_limit_per_minute: null,
  cache_scope: "key",
  shadow: 1,
});

/** A D1 that fails every call: whatever still answers did not wait on it. */
const noD1 = new Proxy(env.DB, {
  get() {
    return () => {
      throw new Error("D1 was called");
    };
  },
});

describe("key cache", () => {
  it("serves an entry until its TTL, evicts the least recently used, and caches nothing at TTL 0", () => {
    const cache = new KeyCache(2);
    cache.set(record("a"), 1000, 0);
    expect(cache.get("a", 999)?.id).toBe("a");
    expect(cache.get("a", 1000)).toBeUndefined();
    cache.set(record("a"), 1000, 0);
    cache.set(record("b"), 1000, 0);
    cache.get("a", 1); // a is now the most recently used
    cache.set(record("c"), 1000, 1);
    expect([cache.get("a", 2)?.id, cache.get("b", 2), cache.get("c", 2)?.id]).toEqual(["a", undefined, "c"]);
    cache.set(record("d"), 0, 0);
    expect(cache.get("d", 0)).toBeUndefined();
  });

  it("answers a cache hit with no D1 round trip once the key is cached", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("MISS");
    const hit = await ask(key, body, {}, { DB: noD1 });
    expect([hit.status, hit.headers.get("x-stitch-cache")]).toEqual([200, "HIT"]);
    expect((await ledgerRows(id)).map((r) => r.path)).toEqual(["small", "cache"]); // billed all the same
  });

  it("honours a revocation made through this isolate at once", async () => {
    const { id, key } = await createKey();
    expect((await ask(key, chatBody())).status).toBe(200);
    expect((await edge(`/admin/keys/${id}/revoke`, { method: "POST", headers: ADMIN })).status).toBe(200);
    const res = await ask(key, chatBody());
    expect([res.status, res.json.error.code]).toEqual([401, "key_revoked"]);
  });

  it("honours a revocation made elsewhere within KEY_CACHE_TTL_SECONDS, and at once with the cache off", async () => {
    const { id } = await createKey();
    const ttlMs = Number(env.KEY_CACHE_TTL_SECONDS) * 1000;
    const t0 = Date.now();
    expect((await getKeyCached(env.DB, id, ttlMs, t0))?.revoked_at).toBeNull();
    // Another isolate (or the admin of another location) revokes it: this isolate's cache is not told.
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(t0, id).run();
    expect((await getKeyCached(env.DB, id, ttlMs, t0 + ttlMs - 1))?.revoked_at).toBeNull();
    expect((await getKeyCached(env.DB, id, ttlMs, t0 + ttlMs))?.revoked_at).toBe(t0);
    const other = await createKey();
    expect((await ask(other.key, chatBody())).status).toBe(200);
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), other.id).run();
    expect((await ask(other.key, chatBody(), {}, { KEY_CACHE_TTL_SECONDS: "0" })).status).toBe(401);
  });
});
