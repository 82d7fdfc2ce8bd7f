/**
 * The edge's exit calibration: the fixed-sequence curve and the isotonic calibrated score, computed from the newest
 * shadow samples of the pair being served (shared/shadow/), reused by an isolate for `refreshMs`. From it, each
 * request's exit policy: the operator's target (SHADOW_TARGET) once there are enough samples, or the request's own
 * dial (`stitch.max_disagreement`) at any count: a dial the samples cannot yet certify gets NEVER_EXIT (every
 * answer escalates), never an unproven early exit. Without either the small function keeps its offline threshold.
 */
import type { ExitCalibration } from "../../../shared/index.js";
import { type CurvePoint, certifiedPoint, exitCurve, NEVER_EXIT } from "../../../shared/shadow/exit-curve.js";
import { fitIsotonic, type IsotonicStep, predictIsotonic } from "../../../shared/shadow/isotonic.js";
import type { Config } from "../config.js";
import { type RecentSamples, recentSamples } from "./samples-db.js";

export interface Calibration {
  /** Names this computation in every answer that used it: `shadow:<samples>@<newest sample id>`. */
  id: string;
  pair: string;
  samples: RecentSamples["samples"];
  /** The fixed-sequence curve of each target asked for (its candidates depend on the target), computed once. */
  curves: Map<number, CurvePoint[]>;
  step: number;
  isotonic: IsotonicStep[];
}

/** The threshold certified for `target` (its curve point), or null: nothing may exit. */
export function certifiedFor(calibration: Calibration, target: number): CurvePoint | null {
  let curve = calibration.curves.get(target);
  if (!curve) {
    curve = exitCurve(calibration.samples, target, { step: calibration.step });
    calibration.curves.set(target, curve);
  }
  return certifiedPoint(curve, target);
}

const memo = new WeakMap<D1Database, { at: number; value: Calibration | null }>();

/**
 * The calibration, recomputed at most every `refreshMs` per isolate. When D1 cannot be read the answer is not failed
 * for it: the last one computed serves, or none (the offline threshold; a dial then lets nothing exit).
 */
export async function currentCalibration(
  db: D1Database,
  config: Config["shadow"],
  now = Date.now(),
): Promise<Calibration | null> {
  const known = memo.get(db);
  if (known && now - known.at < config.refreshMs) return known.value;
  let recent: RecentSamples | null;
  try {
    recent = await recentSamples(db, config.window);
  } catch (err) {
    console.error(JSON.stringify({ shadow_calibration_unavailable: String(err) }));
    return known?.value ?? null;
  }
  const value = recent && {
    id: `shadow:${recent.samples.length}@${recent.lastId}`,
    pair: recent.pair,
    samples: recent.samples,
    curves: new Map(),
    step: config.step,
    isotonic: recent.samples.length >= config.minSamples ? fitIsotonic(recent.samples) : [],
  };
  memo.set(db, { at: now, value });
  return value;
}

/** The exit policy a request is served with; undefined: the small function's offline threshold. */
export function exitPolicy(
  calibration: Calibration | null,
  config: Config["shadow"],
  maxDisagreement?: number,
): ExitCalibration | undefined {
  const target = maxDisagreement ?? config.target;
  if (target === undefined) return undefined;
  if (maxDisagreement === undefined && (calibration?.samples.length ?? 0) < config.minSamples) return undefined;
  const point = calibration && certifiedFor(calibration, target);
  return { threshold: point?.threshold ?? NEVER_EXIT, calibration: `${calibration?.id ?? "shadow:0"}/${target}` };
}

/** The calibrated score of an answer: the probability the large model agrees, or null before enough samples. */
export function agreementProbability(calibration: Calibration | null, decision: number | null): number | null {
  if (!calibration || decision === null) return null;
  return predictIsotonic(calibration.isotonic, decision);
}
