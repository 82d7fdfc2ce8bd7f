/** Expired Idempotency-Key rows are purged by the Worker's scheduled handler (the cron trigger in wrangler.toml). */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PURGE_BATCH } from "../src/idempotency/idempotency.js";
import worker from "../src/index.js";

const rowsOf = async (keyId: string) =>
  (
    await env.DB.prepare("SELECT idem_key FROM idempotency WHERE key_id = ? ORDER BY idem_key")
      .bind(keyId)
      .all<{ idem_key: string }>()
  ).results.map((r) => r.idem_key);

async function insertRows(keyId: string, count: number, prefix: string, expiresAt: number): Promise<void> {
  const insert = env.DB.prepare(
    `INSERT INTO idempotency (key_id, idem_key, body_hash, request_id, state, response, expires_at)
     VALUES (?, ?, 'h', ?, 'done', ?, ?)`,
  );
  const rows = Array.from({ length: count }, (_, i) =>
    insert.bind(keyId, `${prefix}-${String(i).padStart(4, "0")}`, `req_${prefix}_${i}`, "x".repeat(2048), expiresAt),
  );
  for (let i = 0; i < rows.length; i += 200) await env.DB.batch(rows.slice(i, i + 200));
}

async function runCron(at: number): Promise<void> {
  const controller = createScheduledController({ scheduledTime: new Date(at), cron: "*/15 * * * *" });
  const ctx = createExecutionContext();
  const scheduled = worker.scheduled as (
    c: ScheduledController,
    e: Cloudflare.Env,
    x: ExecutionContext,
  ) => Promise<void>;
  await scheduled(controller, env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("the scheduled purge of Idempotency-Key rows", () => {
  it("deletes every expired row, more than one batch of them, and keeps the live ones", async () => {
    const keyId = `purge-${crypto.randomUUID()}`;
    const now = Date.now();
    await insertRows(keyId, PURGE_BATCH + 20, "old", now - 1);
    await insertRows(keyId, 3, "live", now + 3_600_000);
    expect(await rowsOf(keyId)).toHaveLength(PURGE_BATCH + 23);
    await runCron(now);
    expect(await rowsOf(keyId)).toEqual(["live-0000", "live-0001", "live-0002"]);
    await runCron(now + 3_600_000);
    expect(await rowsOf(keyId)).toEqual([]);
  });
});
