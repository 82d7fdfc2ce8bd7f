import { describe, expect, it } from "vitest";
import { sameAnswer } from "../shared/shadow/normalise-answer.js";
import { calibrationError, overTime, phaseStats, shadowShare } from "./shadow-analysis.js";
import type { StreamItem } from "./shadow-offline.js";
import { type ShadowResults, verdicts } from "./shadow-report.js";
import type { Answered, RunResult } from "./shadow-run.js";

const item = (index: number, small: string, large: string): StreamItem => ({
  index,
  tier: "exists",
  question: "q",
  png: "",
  small,
  decision: 0.9,
  large,
  agree: sameAnswer(small, large),
});
const answered = (index: number, path: string, answer: string, agreement: number | null = null): Answered => ({
  index,
  path,
  answer,
  decision: 0.9,
  threshold: 0.5,
  calibration: "offline",
  agreement,
  agreementCalibration: agreement === null ? null : "shadow:10@1",
  largeMs: path === "large" ? 10 : 0,
});

describe("bench:shadow's analysis", () => {
  // Four items: two exits (one disagreeing after normalisation), one exit agreeing up to case and a full stop, one escalation.
  const items = [item(0, "red", "red"), item(1, "blue", "red"), item(2, "Yes.", "yes"), item(3, "two", "three")];
  const run = [answered(0, "small", "red", 1), answered(1, "small", "blue", 0.5), answered(2, "small", "Yes.", 1)];
  run.push(answered(3, "large", "three", 0));

  it("counts an exit as disagreeing only when its normalised answer differs from the escalation's", () => {
    const s = phaseStats(run, items);
    expect(s).toMatchObject({ items: 4, exits: 3, disagreements: 1, exitRate: 0.75 });
    expect(s.disagreement).toBeCloseTo(1 / 3, 12);
    expect(s.lower95).toBeLessThan(1 / 3);
    expect(s.upper95).toBeGreaterThan(1 / 3);
    expect(overTime(run, items, 2).map((w) => w.disagreement)).toEqual([0.5, 0]);
  });

  it("takes the shadows' share of all large compute, and the calibrated score's error against the offline truth", () => {
    const result = {
      answered: run,
      report: { shadow_cost: { samples: 2, accelerator_ms_large: 30, share_of_large: null } },
    } as unknown as RunResult;
    expect(shadowShare(result)).toMatchObject({ shadows: 2, shadowMs: 30, escalationsMs: 10, share: 0.75 });
    // Exits: predictions 1, 0.5, 1 for truths agree, disagree, agree: only the 0.5 bin is off, by 0.5, a third of them.
    const ece = calibrationError(run, items);
    expect(ece.exitItems).toBe(3);
    expect(ece.allItems).toBe(4);
    expect(ece.exits).toBeCloseTo(0.5 / 3, 12);
    // With the escalated item (0 against a disagreeing truth: exact), a quarter of the items are off by 0.5.
    expect(ece.all).toBeCloseTo(0.5 / 4, 12);
    // An answer scored by the offline fit (before the pair's minimum of samples) is not the shadow fit's to count.
    const offline = run.map((a, i) => (i === 1 ? { ...a, agreement: 0, agreementCalibration: "offline:9000/600" } : a));
    expect(calibrationError(offline, items)).toMatchObject({ exitItems: 2, allItems: 3, exits: 0 });
  });

  it("computes its verdicts from the measurements, either way", () => {
    const stats = (disagreement: number, lower95: number) => ({ disagreement, lower95 }) as never;
    const results = (fixedAfter: [number, number], recalibratedAfter: [number, number], share: number, ece: number) =>
      ({
        settings: { target: 0.05 },
        passes: {
          fixed: { after: stats(...fixedAfter) },
          recalibrated: { after: stats(...recalibratedAfter), shadow: { share } },
        },
        calibrationError: { exits: ece },
      }) as unknown as ShadowResults;
    expect(verdicts(results([0.4, 0.38], [0.01, 0.002], 0.02, 0.01))).toEqual({
      recalibratedHolds: true,
      fixedBreaks: true,
      shadowCost: true,
      ece: true,
    });
    // No exit after the shift: the promise held vacuously, which is not a pass.
    expect(verdicts(results([0.4, 0.38], [null, null] as never, 0.02, 0.01)).recalibratedHolds).toBe(false);
    expect(verdicts(results([0.06, 0.04], [0.07, 0.05], 0.08, 0.06))).toEqual({
      recalibratedHolds: false,
      fixedBreaks: false,
      shadowCost: false,
      ece: false,
    });
  });
});
