/**
 * The edge's exit calibration: per pack pair, the fixed-sequence curve and the isotonic calibrated score, computed
 * from the newest shadow samples of that pair (shared/shadow/), reused by an isolate for `refreshMs`. From them, each
 * request's exit policy, one entry per pair (the edge cannot know before the call which pair will answer; the small
 * function takes its own): the operator's target (SHADOW_TARGET) for a pair with enough samples, or the request's
 * own dial (`stitch.max_disagreement`) at any count: a dial a pair's samples cannot yet certify gets NEVER_EXIT
 * (every answer escalates), never an unproven early exit, and so does any pair without samples. Without either the
 * small function keeps its offline threshold.
 */
import type { AnswerResponse, ExitCalibration } from "../../../shared/index.js";
import { type CurvePoint, certifiedPoint, exitCurve, NEVER_EXIT } from "../../../shared/shadow/exit-curve.js";
import { fitIsotonic, type IsotonicStep, predictIsotonic } from "../../../shared/shadow/isotonic.js";
import type { Config } from "../config.js";
import { pairKey, pairOfKey, recentSamplesByPair } from "./samples-db.js";

export interface Calibration {
  /** Names this computation in every answer that used it: `shadow:<samples>@<newest sample id>`. */
  id: string;
  /** pairKey of the pack pair the samples measured. */
  pair: string;
  samples: { score: number; agree: boolean }[];
  /** The fixed-sequence curve of each target asked for (its candidates depend on the target), computed once. */
  curves: Map<number, CurvePoint[]>;
  step: number;
  /** Empty before `minSamples`. */
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

const memo = new WeakMap<D1Database, { at: number; value: Calibration[] }>();

/**
 * The calibration of each pair with samples (the one that reported last first), recomputed at most every
 * `refreshMs` per isolate. When D1 cannot be read the answer is not failed for it: the last ones computed serve, or
 * none (the offline threshold; a dial then lets nothing exit).
 */
export async function currentCalibrations(
  db: D1Database,
  config: Config["shadow"],
  now = Date.now(),
): Promise<Calibration[]> {
  const known = memo.get(db);
  if (known && now - known.at < config.refreshMs) return known.value;
  let recent: Awaited<ReturnType<typeof recentSamplesByPair>>;
  try {
    recent = await recentSamplesByPair(db, config.window);
  } catch (err) {
    console.error(JSON.stringify({ shadow_calibration_unavailable: String(err) }));
    return known?.value ?? [];
  }
  const value = recent.map((r) => ({
    id: `shadow:${r.samples.length}@${r.lastId}`,
    pair: r.pair,
    samples: r.samples,
    curves: new Map(),
    step: config.step,
    isotonic: r.samples.length >= config.minSamples ? fitIsotonic(r.samples) : [],
  }));
  memo.set(db, { at: now, value });
  return value;
}

/** The exit policy a request is served with, one entry per pair; undefined: the small function's offline threshold. */
export function exitPolicies(
  calibrations: readonly Calibration[],
  config: Config["shadow"],
  maxDisagreement?: number,
): ExitCalibration[] | undefined {
  const target = maxDisagreement ?? config.target;
  if (target === undefined) return undefined;
  // The operator's target moves a pair off its offline threshold only once it has enough samples; a dial, at once.
  const served = calibrations.filter((c) => maxDisagreement !== undefined || c.samples.length >= config.minSamples);
  const entries: ExitCalibration[] = served.map((c) => ({
    pair: pairOfKey(c.pair),
    threshold: certifiedFor(c, target)?.threshold ?? NEVER_EXIT,
    calibration: `${c.id}/${target}`,
  }));
  // A dial holds for a pair without samples too: nothing of it exits.
  if (maxDisagreement !== undefined)
    entries.push({ pair: null, threshold: NEVER_EXIT, calibration: `shadow:0/${target}` });
  return entries.length > 0 ? entries : undefined;
}

/** The calibration of the pair that answered (its `models`), if the edge has one. */
export function calibrationOf(calibrations: readonly Calibration[], models: AnswerResponse["models"]) {
  const key = pairKey(models);
  return calibrations.find((c) => c.pair === key) ?? null;
}

export interface AgreementScore {
  /** The probability that the large model agrees at the answer's decision score; null: no calibration, or no decision. */
  probability: number | null;
  /** Which fit: `shadow:<samples>@<newest sample id>`, the small function's `offline:…`, or null. */
  calibration: string | null;
}

/**
 * The calibrated score of an answer: the answering pair's shadow fit once it has `minSamples`, else the small
 * function's offline one (serving-defaults.json), else none.
 */
export function agreementScore(calibrations: readonly Calibration[], answer: AnswerResponse): AgreementScore {
  const exit = answer.exit;
  if (!exit) return { probability: null, calibration: null };
  const shadow = calibrationOf(calibrations, answer.models);
  if (shadow && shadow.isotonic.length > 0)
    return { probability: predictIsotonic(shadow.isotonic, exit.decision), calibration: shadow.id };
  const offline = exit.agreement_calibration ?? null;
  return offline === null
    ? { probability: null, calibration: null }
    : { probability: exit.agreement_probability ?? null, calibration: offline };
}
