/**
 * bench:shadow's figures, computed from the answers the stack gave and the offline truth: the realised disagreement
 * of early exits (an exit whose answer differs, normalised, from the escalation's answer for the same item) over
 * time and per phase with its Clopper–Pearson bounds, the exit rate, the shadows' share of large-model compute, and
 * the calibrated score's expected calibration error on items it was not fitted on.
 */
import { clopperPearsonUpper } from "../shared/shadow/clopper-pearson.js";
import { expectedCalibrationError } from "../shared/shadow/isotonic.js";
import { sameAnswer } from "../shared/shadow/normalise-answer.js";
import type { StreamItem } from "./shadow-offline.js";
import type { Answered, RunResult } from "./shadow-run.js";

export interface PhaseStats {
  items: number;
  exits: number;
  disagreements: number;
  /** Of exits; null without exits. */
  disagreement: number | null;
  /** One-sided 95% bounds of the disagreement (Clopper–Pearson). */
  lower95: number | null;
  upper95: number | null;
  exitRate: number;
}

const disagrees = (a: Answered, item: StreamItem) => a.path === "small" && !sameAnswer(a.answer, item.large);

export function phaseStats(answered: Answered[], items: StreamItem[]): PhaseStats {
  const exits = answered.filter((a) => a.path === "small").length;
  const disagreements = answered.filter((a, i) => disagrees(a, items[i] as StreamItem)).length;
  return {
    items: answered.length,
    exits,
    disagreements,
    disagreement: exits > 0 ? disagreements / exits : null,
    lower95: exits > 0 ? 1 - clopperPearsonUpper(exits - disagreements, exits) : null,
    upper95: exits > 0 ? clopperPearsonUpper(disagreements, exits) : null,
    exitRate: answered.length > 0 ? exits / answered.length : 0,
  };
}

/** Consecutive windows of `size` items: the disagreement of their exits and their exit rate, at the window's end. */
export function overTime(answered: Answered[], items: StreamItem[], size: number) {
  const points: { x: number; disagreement: number | null; exitRate: number }[] = [];
  for (let from = 0; from + size <= answered.length; from += size) {
    const s = phaseStats(answered.slice(from, from + size), items.slice(from, from + size));
    points.push({ x: from + size, disagreement: s.disagreement, exitRate: s.exitRate });
  }
  return points;
}

/** Shadows' large compute against all large compute (escalations billed + shadows), from the edge's report. */
export function shadowShare(run: RunResult) {
  const escalationsMs = run.answered.reduce((sum, a) => sum + a.largeMs, 0);
  const shadowMs = run.report.shadow_cost.accelerator_ms_large;
  return {
    shadows: run.report.shadow_cost.samples,
    shadowMs,
    escalationsMs,
    share: escalationsMs + shadowMs > 0 ? shadowMs / (escalationsMs + shadowMs) : null,
  };
}

/**
 * The shadow-fitted calibrated score against the truth (does the escalation's answer equal the small one, offline).
 * Every answer's score came from a fit made before its own shadow sample, if any, reached the edge: all are held out.
 * Over the early exits (the scores the samples cover) and over every answer that had a score from the shadow fit
 * (before the minimum of samples the edge passes the small function's offline score on: not this figure's).
 */
export function calibrationError(answered: Answered[], items: StreamItem[]) {
  const scored = answered.flatMap((a, i) =>
    a.agreement === null || !a.agreementCalibration?.startsWith("shadow:") ? [] : [{ a, item: items[i] as StreamItem }],
  );
  const ece = (rows: typeof scored) =>
    rows.length === 0
      ? null
      : expectedCalibrationError(
          rows.map((r) => r.a.agreement as number),
          rows.map((r) => r.item.agree),
        );
  const exits = scored.filter((r) => r.a.path === "small");
  return { exits: ece(exits), exitItems: exits.length, all: ece(scored), allItems: scored.length };
}
