/**
 * The admin API (Bearer ADMIN_SECRET): create a key (its secret shown once), list, revoke, update budget and limits;
 * the ledger's reconciliation (GET /ledger), shadow escalation's state (GET /shadow) and the gauges of both (GET
 * /metrics, Prometheus text).
 */
import { Hono } from "hono";
import {
  ConflictError,
  CreateKeyRequestSchema,
  NotFoundError,
  quoted,
  UpdateKeyRequestSchema,
} from "../../../shared/index.js";
import { parseJson, parseWith } from "../../../shared/parse-with.js";
import { type Accounts, accountOf } from "../account/account.js";
import { adminAuth } from "../auth/admin.js";
import { generateKey } from "../auth/key-format.js";
import { type ApiKeyRecord, getKey, insertKey, keyInfo, listKeys, revokeKey, updateKey } from "../auth/keys-db.js";
import type { AppEnv } from "../bindings.js";
import { reconcile, reconciliationMetrics } from "../ledger/reconcile.js";
import { shadowMetrics, shadowReport } from "../shadow/shadow-report.js";
import { readBody } from "../validate/read-body.js";

const MAX_ADMIN_BODY = 16 * 1024;

const found = <T>(row: T | null, id: string): T => {
  if (!row) throw new NotFoundError(`No key ${quoted(id)}`, "key_not_found", "id");
  return row;
};

/** A key as the admin sees it, with its spend from its account (the truth; D1's trails it by the outbox's delay). */
async function info(accounts: Accounts, row: ApiKeyRecord) {
  return keyInfo(row, await accountOf(accounts, row.id).spent(row.spent_nanos));
}

export const admin = new Hono<AppEnv>()
  .use(adminAuth())
  .post("/keys", async (c) => {
    const settings = parseWith(CreateKeyRequestSchema, parseJson(await readBody(c.req.raw, MAX_ADMIN_BODY)));
    const { id, key, hash } = await generateKey(settings.key);
    if (settings.key && (await getKey(c.env.DB, id)))
      throw new ConflictError(`A key with id '${id}' exists`, "key_exists", "key");
    const row = await insertKey(c.env.DB, id, hash, settings, Date.now());
    return c.json({ ...keyInfo(row), key }, 201);
  })
  .get("/keys", async (c) => {
    const rows = await listKeys(c.env.DB);
    return c.json({ object: "list", data: await Promise.all(rows.map((row) => info(c.env.ACCOUNTS, row))) });
  })
  .get("/keys/:id", async (c) =>
    c.json(await info(c.env.ACCOUNTS, found(await getKey(c.env.DB, c.req.param("id")), c.req.param("id")))),
  )
  .patch("/keys/:id", async (c) => {
    const settings = parseWith(UpdateKeyRequestSchema, parseJson(await readBody(c.req.raw, MAX_ADMIN_BODY)));
    const row = found(await updateKey(c.env.DB, c.req.param("id"), settings), c.req.param("id"));
    return c.json(await info(c.env.ACCOUNTS, row));
  })
  .get("/ledger", async (c) => c.json(await reconcile(c.env.DB, c.env.ACCOUNTS)))
  .get("/shadow", async (c) => c.json(await shadowReport(c.env.DB, c.var.config.shadow, c.req.query("pair"))))
  .get("/metrics", async (c) =>
    c.body(
      reconciliationMetrics(await reconcile(c.env.DB, c.env.ACCOUNTS)) +
        shadowMetrics(await shadowReport(c.env.DB, c.var.config.shadow)),
      200,
      { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    ),
  )
  .post("/keys/:id/revoke", async (c) =>
    c.json(
      await info(c.env.ACCOUNTS, found(await revokeKey(c.env.DB, c.req.param("id"), Date.now()), c.req.param("id"))),
    ),
  );
