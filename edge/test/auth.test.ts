import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, ask, chatBody, createKey, edge, ledgerRows } from "./helpers.js";

describe("API key auth", () => {
  const expect401 = (res: Awaited<ReturnType<typeof edge>>, code: string) => {
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="stitch"');
    expect(res.json.error).toMatchObject({ type: "authentication_error", code });
    expect(res.json.error.request_id).toBe(res.headers.get("x-request-id"));
  };

  it("refuses a missing key", async () => {
    expect401(
      await edge("/v1/chat/completions", { method: "POST", body: JSON.stringify(chatBody()) }),
      "missing_api_key",
    );
    expect401(await edge("/v1/models", { headers: { authorization: "Basic abc" } }), "missing_api_key");
  });

  it("refuses a malformed or unknown key", async () => {
    expect401(await ask("sk-nope", chatBody()), "invalid_api_key");
    expect401(await ask(`sk-stitch-${"0".repeat(16)}-${"0".repeat(48)}`, chatBody()), "invalid_api_key");
  });

  it("refuses a known id with the wrong secret", async () => {
    const { key } = await createKey();
    const forged = `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`;
    expect401(await ask(forged, chatBody()), "invalid_api_key");
  });

  it("stores only a SHA-256 of the key", async () => {
    const { id, key } = await createKey();
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(key.slice(-48));
    expect(row?.secret_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("fails a revoked key at once", async () => {
    const { id, key } = await createKey();
    expect((await ask(key, chatBody())).status).toBe(200);
    expect((await edge(`/admin/keys/${id}/revoke`, { method: "POST", headers: ADMIN })).status).toBe(200);
    expect401(await ask(key, chatBody()), "key_revoked");
    expect401(await edge("/v1/usage", { headers: { authorization: `Bearer ${key}` } }), "key_revoked");
    expect(await ledgerRows(id)).toHaveLength(1);
  });
});
