import { createMiddleware } from "hono/factory";
import { AuthenticationError, constantTimeEqual } from "../../../shared/index.js";
import type { AppEnv } from "../bindings.js";
import { sha256Hex } from "../util/sha256.js";
import { bearerToken, keyIdOf } from "./key-format.js";
import { getKeyCached } from "./keys-db.js";

/**
 * Authenticates `Authorization: Bearer sk-stitch-...` against the key's record (D1, cached in the isolate for
 * KEY_CACHE_TTL_SECONDS: a revocation elsewhere is honoured within it, see key-cache.ts) and sets `c.var.apiKey`.
 * The secret's hash is compared on every request, cached record or not.
 */
export function apiKeyAuth() {
  return createMiddleware<AppEnv>(async function apiKeyAuthMiddleware(c, next) {
    const presented = bearerToken(c.req.header("authorization"));
    if (!presented) {
      throw new AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'", "missing_api_key");
    }
    const id = keyIdOf(presented);
    const [row, hash] = await Promise.all([
      id ? getKeyCached(c.env.DB, id, c.var.config.keyCacheTtlSeconds * 1000) : null,
      sha256Hex(presented),
    ]);
    // Compare even when no row was found, so timing does not tell a known id from an unknown one.
    const matches = constantTimeEqual(hash, row?.secret_hash ?? "0".repeat(64)) && row !== null;
    if (!row || !matches) throw new AuthenticationError("Invalid API key", "invalid_api_key");
    if (row.revoked_at !== null) throw new AuthenticationError("This API key has been revoked", "key_revoked");
    c.set("apiKey", row);
    await next();
  });
}
