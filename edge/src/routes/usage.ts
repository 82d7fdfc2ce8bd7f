/** GET /v1/usage?from=&to=: the calling key's usage by path and by day. */
import { Hono } from "hono";
import { UsageQuerySchema } from "../../../shared/index.js";
import { apiKeyAuth } from "../auth/api-key.js";
import type { AppEnv } from "../bindings.js";
import { usageRange, usageReport } from "../ledger/usage.js";
import { parseWith } from "../validate/parse-with.js";

export const usage = new Hono<AppEnv>().get("/", apiKeyAuth(), async (c) => {
  const query = parseWith(UsageQuerySchema, c.req.query());
  return c.json(await usageReport(c.env.DB, c.var.apiKey.id, usageRange(query, Date.now())));
});
