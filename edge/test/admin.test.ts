import { describe, expect, it } from "vitest";
import { ADMIN, ask, chatBody, createKey, edge, holdingUsage, ledgerRows } from "./helpers.js";

const json = (body: unknown) => ({
  method: "POST",
  headers: { ...ADMIN, "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("admin API", () => {
  it("needs the admin secret", async () => {
    expect((await edge("/admin/keys")).status).toBe(401);
    expect(
      (await edge("/admin/keys", { headers: { authorization: "Bearer wrong-secret-wrong-secret" } })).json.error.code,
    ).toBe("invalid_admin_secret");
    const { key } = await createKey();
    expect((await edge("/admin/keys", { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
  });

  it("is off when no ADMIN_SECRET is configured", async () => {
    const res = await edge("/admin/keys", { headers: ADMIN }, { ADMIN_SECRET: undefined });
    expect([res.status, res.json.error.code]).toEqual([403, "admin_disabled"]);
  });

  it("creates a key whose secret is shown once", async () => {
    const created = await edge(
      "/admin/keys",
      json({ name: "alice", budget_usd: 5, rate_limit_per_minute: 10, cache_scope: "shared" }),
    );
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: "alice",
      budget_usd: 5,
      spent_usd: 0,
      rate_limit_per_minute: 10,
      cache_scope: "shared",
      revoked_at: null,
    });
    expect(created.json.key).toMatch(/^sk-stitch-[0-9a-f]{16}-[0-9a-f]{48}$/);
    const listed = await edge("/admin/keys", { headers: ADMIN });
    const entry = listed.json.data.find((k: { id: string }) => k.id === created.json.id);
    expect(entry).toMatchObject({ name: "alice" });
    expect(listed.text).not.toContain(created.json.key);
    expect(listed.text).not.toContain("secret_hash");
    const one = await edge(`/admin/keys/${created.json.id}`, { headers: ADMIN });
    expect(one.json.key).toBeUndefined();
    expect((await ask(created.json.key, chatBody())).status).toBe(200);
  });

  it("registers a given key once (the local stack's development key)", async () => {
    const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");
    const given = `sk-stitch-${hex(16)}-${hex(48)}`;
    const created = await edge("/admin/keys", json({ name: "dev", key: given }));
    expect([created.status, created.json.key]).toEqual([201, given]);
    expect((await ask(given, chatBody())).status).toBe(200);
    expect((await edge("/admin/keys", json({ name: "dev", key: given }))).json.error.code).toBe("key_exists");
    expect((await edge("/admin/keys", json({ name: "dev", key: "sk-stitch-short" }))).json.error.param).toBe("key");
  });

  it("sets a budget, a rate limit and the cache scope", async () => {
    const { id } = await createKey();
    const res = await edge(`/admin/keys/${id}`, {
      method: "PATCH",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ budget_usd: 0.25, rate_limit_per_minute: 3, cache_scope: "shared" }),
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id, budget_usd: 0.25, rate_limit_per_minute: 3, cache_scope: "shared" });
    const cleared = await edge(`/admin/keys/${id}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ budget_usd: null }),
    });
    expect(cleared.json.budget_usd).toBeNull();
  });

  it("reports a key's spend from its account at once, before the ledger has the usage records", async () => {
    const { id, key } = await createKey();
    const answered = await holdingUsage(() => ask(key, chatBody()));
    expect(answered.status).toBe(200);
    expect(await ledgerRows(id)).toHaveLength(0); // the outbox has not landed yet
    const info = await edge(`/admin/keys/${id}`, { headers: ADMIN });
    expect(info.json.spent_usd).toBeCloseTo(answered.json.stitch.cost, 12);
    const list = await edge("/admin/keys", { headers: ADMIN });
    const listed = list.json.data.find((k: { id: string }) => k.id === id);
    expect(listed.spent_usd).toBeCloseTo(answered.json.stitch.cost, 12);
  });

  it("revokes once and keeps the first revocation time", async () => {
    const { id } = await createKey();
    const first = await edge(`/admin/keys/${id}/revoke`, { method: "POST", headers: ADMIN });
    expect(first.json.revoked_at).not.toBeNull();
    const again = await edge(`/admin/keys/${id}/revoke`, { method: "POST", headers: ADMIN });
    expect(again.json.revoked_at).toBe(first.json.revoked_at);
  });

  it("answers 404 for an unknown key and 400 for bad bodies", async () => {
    expect((await edge("/admin/keys/nope/revoke", { method: "POST", headers: ADMIN })).json.error.code).toBe(
      "key_not_found",
    );
    expect((await edge("/admin/keys", json({ name: "" }))).status).toBe(400);
    expect((await edge("/admin/keys", json({ name: "x", budget_usd: -1 }))).json.error.param).toBe("budget_usd");
    expect((await edge("/admin/keys", json({ name: "x", colour: "red" }))).json.error.code).toBe("unknown_parameter");
    expect((await edge("/admin/keys", { method: "POST", headers: ADMIN, body: "{" })).json.error.code).toBe(
      "invalid_json",
    );
  });
});
