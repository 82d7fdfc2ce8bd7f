import { createMiddleware } from "hono/factory";
import { AuthenticationError, constantTimeEqual, PermissionError } from "../../../shared/index.js";
import type { AppEnv } from "../bindings.js";
import { sha256Hex } from "../util/sha256.js";
import { bearerToken } from "./key-format.js";

/** Guards the admin API with `Authorization: Bearer <ADMIN_SECRET>`; off (403) when no secret is configured. */
export function adminAuth() {
  return createMiddleware<AppEnv>(async function adminAuthMiddleware(c, next) {
    const secret = c.var.config.adminSecret;
    if (!secret) throw new PermissionError("The admin API is disabled (no ADMIN_SECRET)", "admin_disabled");
    const presented = bearerToken(c.req.header("authorization"));
    if (!presented) throw new AuthenticationError("Missing admin secret", "missing_admin_secret");
    // Hash both sides so the comparison runs over equal lengths whatever was sent.
    const [a, b] = await Promise.all([sha256Hex(presented), sha256Hex(secret)]);
    if (!constantTimeEqual(a, b)) throw new AuthenticationError("Invalid admin secret", "invalid_admin_secret");
    await next();
  });
}
