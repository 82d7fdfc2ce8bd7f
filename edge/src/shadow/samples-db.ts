/** The shadow samples in D1 (infra/migrations/0004): written as the small function reports them, read per pack pair. */
import { MAX_CALIBRATED_PAIRS, type PackPair, type ShadowSample } from "../../../shared/index.js";
import type { Labelled } from "../../../shared/shadow/isotonic.js";

export const pairKey = (pair: PackPair) => `${pair.small}|${pair.large}`;

/** The pair a key names (the small pack's name holds no "|": modelVersion is `name@version`). */
export function pairOfKey(key: string): PackPair {
  const cut = key.indexOf("|");
  return { small: key.slice(0, cut), large: key.slice(cut + 1) };
}

/** Keeps one sample (a repeated report of the same request is ignored). */
export async function insertSample(db: D1Database, sample: ShadowSample, now: number): Promise<void> {
  await db
    .prepare(
      `INSERT OR IGNORE INTO shadow_samples
        (request_id, pair, decision, threshold, calibration, agree, accelerator_ms_large, gpu_class_large, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      sample.request_id,
      pairKey(sample.pair),
      sample.decision,
      sample.threshold,
      sample.calibration,
      sample.agree ? 1 : 0,
      sample.large?.accelerator_ms ?? 0,
      sample.large?.gpu_class ?? null,
      now,
    )
    .run();
}

export interface RecentSamples {
  /** pairKey of the pack pair. */
  pair: string;
  /** Id of the pair's newest sample: names the calibration computed from them. */
  lastId: number;
  samples: Labelled[];
}

/**
 * The pairs calibrated at once: at most MAX_CALIBRATED_PAIRS (shared/schemas/shadow.ts; a rolling upgrade's two
 * pairs, and room), those that reported among the newest MAX_CALIBRATED_PAIRS × `window` samples (a pair silent that
 * long is not being served), the one that reported last first. Both queries are served by indexes: the first walks
 * the primary key back from the newest row (a bounded read), the second shadow_samples_pair (pair, id) per pair.
 */
export async function recentSamplesByPair(db: D1Database, window: number): Promise<RecentSamples[]> {
  const { results: pairs } = await db
    .prepare(
      `SELECT pair, MAX(id) AS last_id FROM (SELECT pair, id FROM shadow_samples ORDER BY id DESC LIMIT ?)
        GROUP BY pair ORDER BY last_id DESC LIMIT ?`,
    )
    .bind(MAX_CALIBRATED_PAIRS * window, MAX_CALIBRATED_PAIRS)
    .all<{ pair: string; last_id: number }>();
  if (pairs.length === 0) return [];
  const statement = db.prepare("SELECT decision, agree FROM shadow_samples WHERE pair = ? ORDER BY id DESC LIMIT ?");
  const windows = await db.batch<{ decision: number; agree: number }>(pairs.map((p) => statement.bind(p.pair, window)));
  return pairs.map((p, i) => ({
    pair: p.pair,
    lastId: p.last_id,
    samples: (windows[i]?.results ?? []).map((r) => ({ score: r.decision, agree: r.agree === 1 })),
  }));
}

export interface ShadowCost {
  /** Samples that ran a shadow (escalations' samples cost nothing extra). */
  samples: number;
  /** The large function's accelerator time spent on shadows: the operator's cost. */
  acceleratorMsLarge: number;
}

export async function shadowCost(db: D1Database): Promise<ShadowCost> {
  const row = await db
    .prepare(
      "SELECT COUNT(*) AS n, COALESCE(SUM(accelerator_ms_large), 0) AS ms FROM shadow_samples WHERE gpu_class_large IS NOT NULL",
    )
    .first<{ n: number; ms: number }>();
  return { samples: row?.n ?? 0, acceleratorMsLarge: row?.ms ?? 0 };
}
