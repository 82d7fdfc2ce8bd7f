/**
 * GET /v1/usage?from=&to=: the calling key's usage by path and by day (and both), early exits and budget;
 * GET /v1/usage/requests?limit=&from=&to=: its latest billed requests;
 * GET /v1/usage/export.csv?from=&to=: every ledger row of the period as CSV.
 */
import { Hono } from "hono";
import { UsageQuerySchema, UsageRequestsQuerySchema } from "../../../shared/index.js";
import { parseWith } from "../../../shared/parse-with.js";
import { accountOf } from "../account/account.js";
import { apiKeyAuth } from "../auth/api-key.js";
import type { AppEnv } from "../bindings.js";
import { latestRequests, usageCsv, usageRange, usageReport } from "../ledger/usage.js";
import { nanosToUsd } from "../price/price.js";

export const usage = new Hono<AppEnv>()
  .get("/", apiKeyAuth(), async (c) => {
    const query = parseWith(UsageQuerySchema, c.req.query());
    const key = c.var.apiKey;
    // The budget's spend is the exact counter of the key's Durable Object; the ledger's rows (and the sums here)
    // are written by the queue consumer, so they trail it by up to a batch (max_batch_timeout, wrangler.toml).
    const [report, spent] = await Promise.all([
      usageReport(c.env.DB, key.id, usageRange(query, Date.now()), key),
      accountOf(c.env.ACCOUNTS, key.id).spent(key.spent_nanos),
    ]);
    const limit = key.budget_nanos;
    return c.json({
      ...report,
      budget: {
        ...report.budget,
        spent_usd: nanosToUsd(spent),
        left_usd: limit === null ? null : nanosToUsd(Math.max(0, limit - spent)),
      },
    });
  })
  .get("/requests", apiKeyAuth(), async (c) => {
    const query = parseWith(UsageRequestsQuerySchema, c.req.query());
    const range = usageRange(query, Date.now());
    return c.json({ object: "list", data: await latestRequests(c.env.DB, c.var.apiKey.id, range, query.limit) });
  })
  .get("/export.csv", apiKeyAuth(), (c) => {
    const range = usageRange(parseWith(UsageQuerySchema, c.req.query()), Date.now());
    return new Response(usageCsv(c.env.DB, c.var.apiKey.id, range), {
      headers: {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="stitch-usage-${range.from}-to-${range.to}.csv"`,
        "cache-control": "no-store",
      },
    });
  });
