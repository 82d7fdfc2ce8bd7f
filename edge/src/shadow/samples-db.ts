/** The shadow samples in D1 (infra/migrations/0004): written as the small function reports them, read per pack pair. */
import type { ShadowSample } from "../../../shared/index.js";
import type { Labelled } from "../../../shared/shadow/isotonic.js";

export const pairKey = (pair: ShadowSample["pair"]) => `${pair.small}|${pair.large}`;

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
  pair: string;
  /** Id of the newest sample: names the calibration computed from them. */
  lastId: number;
  samples: Labelled[];
}

/** The newest `window` samples of the pair that reported last (the one being served), or null when there are none. */
export async function recentSamples(db: D1Database, window: number): Promise<RecentSamples | null> {
  const latest = await db
    .prepare("SELECT pair, id FROM shadow_samples ORDER BY id DESC LIMIT 1")
    .first<{ pair: string; id: number }>();
  if (!latest) return null;
  const { results } = await db
    .prepare("SELECT decision, agree FROM shadow_samples WHERE pair = ? ORDER BY id DESC LIMIT ?")
    .bind(latest.pair, window)
    .all<{ decision: number; agree: number }>();
  return {
    pair: latest.pair,
    lastId: latest.id,
    samples: results.map((r) => ({ score: r.decision, agree: r.agree === 1 })),
  };
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
