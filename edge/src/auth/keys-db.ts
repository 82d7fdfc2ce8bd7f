/** Typed queries on `api_keys` (infra/migrations/0001). */
import type { ApiKeyInfo, CacheScope } from "../../../shared/index.js";
import { nanosToUsd, usdToNanos } from "../price/price.js";
import { keyCache } from "./key-cache.js";

export interface ApiKeyRecord {
  id: string;
  name: string;
  secret_hash: string;
  created_at: number;
  revoked_at: number | null;
  budget_nanos: number | null;
  spent_nanos: number;
  rate_limit_per_minute: number | null;
  cache_scope: CacheScope;
  /** 1: the key's answers may be sampled for shadow escalation; 0: opted out (infra/migrations/0004). */
  shadow: number;
}

export interface KeySettings {
  name?: string;
  budget_usd?: number | null;
  rate_limit_per_minute?: number | null;
  cache_scope?: CacheScope;
  shadow?: boolean;
}

export function getKey(db: D1Database, id: string): Promise<ApiKeyRecord | null> {
  return db.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first<ApiKeyRecord>();
}

/** The key's record from this isolate's cache (key-cache.ts) while fresh, else from D1 (and cached). */
export async function getKeyCached(
  db: D1Database,
  id: string,
  ttlMs: number,
  now = Date.now(),
): Promise<ApiKeyRecord | null> {
  const cached = ttlMs > 0 ? keyCache.get(id, now) : undefined;
  if (cached) return cached;
  const row = await getKey(db, id);
  if (row) keyCache.set(row, ttlMs, now);
  return row;
}

export async function insertKey(
  db: D1Database,
  id: string,
  hash: string,
  settings: KeySettings & { name: string },
  now: number,
): Promise<ApiKeyRecord> {
  const row = await db
    .prepare(
      `INSERT INTO api_keys (id, name, secret_hash, created_at, budget_nanos, rate_limit_per_minute, cache_scope, shadow)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    )
    .bind(
      id,
      settings.name,
      hash,
      now,
      settings.budget_usd == null ? null : usdToNanos(settings.budget_usd),
      settings.rate_limit_per_minute ?? null,
      settings.cache_scope ?? "key",
      settings.shadow === false ? 0 : 1,
    )
    .first<ApiKeyRecord>();
  if (!row) throw new Error("INSERT ... RETURNING gave no row");
  return row;
}

export async function listKeys(db: D1Database): Promise<ApiKeyRecord[]> {
  const { results } = await db.prepare("SELECT * FROM api_keys ORDER BY created_at, id").all<ApiKeyRecord>();
  return results;
}

/** Sets revoked_at once (a second revoke keeps the first time); null when no such key. */
export async function revokeKey(db: D1Database, id: string, now: number): Promise<ApiKeyRecord | null> {
  const row = await db
    .prepare("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *")
    .bind(now, id)
    .first<ApiKeyRecord>();
  keyCache.delete(id); // after the write: a read racing it cannot leave the old record cached
  return row;
}

/** Applies only the settings given; null when no such key. */
export async function updateKey(db: D1Database, id: string, settings: KeySettings): Promise<ApiKeyRecord | null> {
  const changes: Record<string, string | number | null> = {};
  if (settings.name !== undefined) changes.name = settings.name;
  if (settings.budget_usd !== undefined)
    changes.budget_nanos = settings.budget_usd === null ? null : usdToNanos(settings.budget_usd);
  if (settings.rate_limit_per_minute !== undefined) changes.rate_limit_per_minute = settings.rate_limit_per_minute;
  if (settings.cache_scope !== undefined) changes.cache_scope = settings.cache_scope;
  if (settings.shadow !== undefined) changes.shadow = settings.shadow ? 1 : 0;
  const columns = Object.keys(changes);
  if (columns.length === 0) return getKey(db, id);
  // Column names come from the fixed list above, never from input.
  const row = await db
    .prepare(`UPDATE api_keys SET ${columns.map((col) => `${col} = ?`).join(", ")} WHERE id = ? RETURNING *`)
    .bind(...Object.values(changes), id)
    .first<ApiKeyRecord>();
  keyCache.delete(id); // after the write, as in revokeKey
  return row;
}

/**
 * The public view of a key: never its hash. `spentNanos` is the key's account's spend (its Durable Object: the truth,
 * edge/src/account/spend.ts); D1's `spent_nanos` trails it until the usage outbox has landed, and is the fallback.
 */
export function keyInfo(row: ApiKeyRecord, spentNanos = row.spent_nanos): ApiKeyInfo {
  return {
    id: row.id,
    name: row.name,
    created_at: new Date(row.created_at).toISOString(),
    revoked_at: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
    budget_usd: row.budget_nanos === null ? null : nanosToUsd(row.budget_nanos),
    spent_usd: nanosToUsd(spentNanos),
    rate_limit_per_minute: row.rate_limit_per_minute,
    cache_scope: row.cache_scope,
    shadow: row.shadow !== 0,
  };
}
