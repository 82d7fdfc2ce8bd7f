/**
 * Tenant isolation: a key never receives another key's cached answer or idempotent replay for the same image and
 * question, streamed or not; sharing the cache happens only between keys an admin set to `cache_scope: "shared"`.
 * "Never received" is checked on what matters: the small function was called for the second key's request, and that
 * key's ledger row is its own computation, not a cache hit.
 */
import { describe, expect, it } from "vitest";
import { ADMIN, ask, chatBody, createKey, edge, ledgerRows, stubCalls, stubLastCall } from "./helpers.js";

const computed = async (res: Awaited<ReturnType<typeof ask>>) => {
  expect(res.status, res.text).toBe(200);
  return stubCalls(res.headers.get("x-request-id") ?? "");
};

async function setScope(id: string, settings: Record<string, unknown>) {
  const res = await edge(`/admin/keys/${id}`, {
    method: "PATCH",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify(settings),
  });
  expect(res.status, res.text).toBe(200);
  return res.json as { cache_scope: string };
}

describe("tenant isolation", () => {
  it("a key's cached answer is never served to another key, streamed or not", async () => {
    const alice = await createKey();
    const bob = await createKey();
    for (const stream of [false, true]) {
      const body = chatBody({ stream });
      expect(await computed(await ask(alice.key, body))).toBe(1);
      const aliceAgain = await ask(alice.key, body);
      expect(aliceAgain.headers.get("x-stitch-cache")).toBe("HIT");
      const bobs = await ask(bob.key, body);
      expect(bobs.headers.get("x-stitch-cache")).toBe("MISS");
      expect(await computed(bobs)).toBe(1);
    }
    const paths = (rows: Record<string, unknown>[]) => rows.map((r) => r.path === "cache");
    expect(paths(await ledgerRows(alice.id))).toEqual([false, true, false, true]);
    expect(paths(await ledgerRows(bob.id))).toEqual([false, false]);
  });

  it("an Idempotency-Key replays only to the key that sent it", async () => {
    const alice = await createKey();
    const bob = await createKey();
    const body = chatBody({ stitch: { cache: { bypass: true } } });
    const headers = { "idempotency-key": "order-42" };
    const first = await ask(alice.key, body, headers);
    expect(await computed(first)).toBe(1);
    const replay = await ask(alice.key, body, headers);
    expect(replay.json.id).toBe(first.json.id);
    expect(await computed(replay)).toBe(0);
    const bobs = await ask(bob.key, body, headers);
    expect(bobs.json.id).not.toBe(first.json.id);
    expect(await computed(bobs)).toBe(1);
    expect(await ledgerRows(bob.id)).toHaveLength(1);
  });

  it("the shared scope is only ever explicit, and shares only among keys in it", async () => {
    const plain = await createKey();
    const listed = await edge(`/admin/keys/${plain.id}`, { headers: ADMIN });
    expect(listed.json.cache_scope).toBe("key");
    // Changing other settings never changes the scope.
    expect((await setScope(plain.id, { budget_usd: 5, rate_limit_per_minute: 100 })).cache_scope).toBe("key");

    const sharer = await createKey({ cache_scope: "shared" });
    const other = await createKey({ cache_scope: "shared" });
    const privateBody = chatBody();
    const sharedBody = chatBody();
    await ask(plain.key, privateBody);
    await ask(sharer.key, sharedBody);
    // Neither way across the boundary…
    expect((await ask(sharer.key, privateBody)).headers.get("x-stitch-cache")).toBe("MISS");
    expect((await ask(plain.key, sharedBody)).headers.get("x-stitch-cache")).toBe("MISS");
    // …but within the shared scope.
    expect((await ask(other.key, sharedBody)).headers.get("x-stitch-cache")).toBe("HIT");
    // Opting in is an admin's explicit act, and opting out takes effect at once.
    const later = chatBody();
    await ask(sharer.key, later);
    expect((await setScope(plain.id, { cache_scope: "shared" })).cache_scope).toBe("shared");
    expect((await ask(plain.key, later)).headers.get("x-stitch-cache")).toBe("HIT");
    expect((await setScope(plain.id, { cache_scope: "key" })).cache_scope).toBe("key");
    expect((await ask(plain.key, later)).headers.get("x-stitch-cache")).toBe("MISS");
  });

  it("partitions the functions' vision cache as the answer cache: by key, or shared only when chosen", async () => {
    const alice = await createKey();
    const shared = await createKey({ cache_scope: "shared" });
    const partitionOf = async (key: string) => {
      const res = await ask(key, chatBody(), { "x-stitch-cache-bypass": "1" });
      expect(res.status, res.text).toBe(200);
      return (await stubLastCall(res.headers.get("x-request-id") ?? ""))?.request.cache_partition;
    };
    expect(await partitionOf(alice.key)).toBe(`key:${alice.id}`);
    expect(await partitionOf(shared.key)).toBe("shared");
  });

  it("refuses a scope that is not one of the two", async () => {
    const { id } = await createKey();
    const res = await edge(`/admin/keys/${id}`, {
      method: "PATCH",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ cache_scope: "global" }),
    });
    expect([res.status, res.json.error.param]).toEqual([400, "cache_scope"]);
    expect((await edge(`/admin/keys/${id}`, { headers: ADMIN })).json.cache_scope).toBe("key");
  });
});
