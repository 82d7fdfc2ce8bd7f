/**
 * What SGL costs against the large model alone, from measured end-to-end times: every request pays the small
 * path; the share that does not exit early also pays the escalation (the large model pruned by the small model's
 * ranking). Pure arithmetic, so that the benchmark's verdicts are computed from its measurements, and tested.
 */

export interface PathTimes {
  /** The small model's answer with its exit decision (vision, prefill, decoding, SEE). */
  smallMs: number;
  /** The escalated answer: the large model, pruned at K by the small model's ranking. */
  escalationMs: number;
  /** The large model alone, unpruned: what a user would run instead. */
  largeMs: number;
}

export interface CostPoint {
  exitRate: number;
  sglMs: number;
  /** SGL's time over the large model's: below 1, SGL is cheaper. */
  ratio: number;
}

/** SGL's expected time per request at an early-exit rate in [0, 1]. */
export const sglMs = (t: PathTimes, exitRate: number): number => t.smallMs + (1 - exitRate) * t.escalationMs;

export function costCurve(t: PathTimes, exitRates: number[]): CostPoint[] {
  return exitRates.map((exitRate) => {
    const ms = sglMs(t, exitRate);
    return { exitRate, sglMs: ms, ratio: ms / t.largeMs };
  });
}

/**
 * The exit rate at which SGL costs what the large model alone does: 1 − (large − small) / escalation. Below it
 * SGL is dearer. null when no exit rate in [0, 1] breaks even (the small path alone costs at least the large
 * model's time); 0 when SGL is cheaper even with every request escalated.
 */
export function breakEvenExitRate(t: PathTimes): number | null {
  if (t.smallMs >= t.largeMs) return null;
  return Math.max(0, 1 - (t.largeMs - t.smallMs) / t.escalationMs);
}

/** stats.ts speedupLimit's L / (K + (L − K)·r) for the prompt as it is: the text tokens are never pruned. */
export function flopsLimitForPrompt(
  layers: number,
  pruneLayer: number,
  retention: number,
  visual: number,
  prompt: number,
): number {
  const text = prompt - visual;
  const kept = text + Math.max(1, Math.round(retention * visual));
  return (layers * prompt) / (pruneLayer * prompt + (layers - pruneLayer) * kept);
}
