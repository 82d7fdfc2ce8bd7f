import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { binomialCdf, clopperPearsonUpper } from "./clopper-pearson.js";
import { agreementByBand, certifiedPoint, exitCurve, fewestToCertify, NEVER_EXIT } from "./exit-curve.js";
import { expectedCalibrationError, fitIsotonic, type Labelled, predictIsotonic } from "./isotonic.js";
import { normaliseAnswer, sameAnswer } from "./normalise-answer.js";

describe("normaliseAnswer", () => {
  it("folds width, case, edge punctuation and white space, and keeps inner punctuation", () => {
    expect(normaliseAnswer("  Ｒｅｄ. ")).toBe("red");
    expect(normaliseAnswer("Top\t LEFT!")).toBe("top left");
    expect(normaliseAnswer("«yes»")).toBe("yes");
    expect(sameAnswer("3.5", "35")).toBe(false);
    expect(sameAnswer("blue circle", "blue  circle.")).toBe(true);
    expect(sameAnswer("blue", "bleu")).toBe(false);
  });
});

describe("clopperPearsonUpper", () => {
  it("matches the closed form at k = 0 and the published table at 1 of 10", () => {
    for (const n of [1, 10, 100, 5000]) expect(clopperPearsonUpper(0, n)).toBeCloseTo(1 - 0.05 ** (1 / n), 9);
    expect(clopperPearsonUpper(1, 10)).toBeCloseTo(0.3942, 4);
    expect(clopperPearsonUpper(7, 7)).toBe(1);
  });

  it("is where the binomial CDF crosses alpha, above the observed rate", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.double({ min: 0, max: 0.99, noNaN: true }), (n, f) => {
        const k = Math.floor(f * n);
        const upper = clopperPearsonUpper(k, n);
        expect(upper).toBeGreaterThanOrEqual(k / n);
        expect(binomialCdf(k, n, upper)).toBeCloseTo(0.05, 6);
      }),
    );
  });
});

describe("fitIsotonic", () => {
  it("pools violators into a non-decreasing step function", () => {
    const steps = fitIsotonic([
      { score: 0.1, agree: false },
      { score: 0.2, agree: true },
      { score: 0.3, agree: false },
      { score: 0.9, agree: true },
    ]);
    expect(steps).toEqual([
      { from: 0.1, p: 0 },
      { from: 0.2, p: 0.5 },
      { from: 0.9, p: 1 },
    ]);
    expect(predictIsotonic(steps, 0.25)).toBe(0.5);
    expect(predictIsotonic(steps, 0.05)).toBe(0);
    expect(predictIsotonic([], 0.5)).toBeNull();
  });

  it("is monotone for any samples", () => {
    const sample = fc.record({ score: fc.double({ min: 0, max: 1, noNaN: true }), agree: fc.boolean() });
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 200 }), (samples) => {
        const steps = fitIsotonic(samples);
        steps.slice(1).forEach((step, i) => {
          expect(step.p).toBeGreaterThan(steps[i]?.p ?? Number.NaN);
          expect(step.from).toBeGreaterThan(steps[i]?.from ?? Number.NaN);
        });
      }),
    );
  });

  it("is calibrated on held-out data drawn from the same law (ECE small), and ECE sees a miscalibrated one", () => {
    const rand = mulberry32(7);
    const law = (s: number) => 0.5 + 0.5 * s ** 2;
    const draw = (n: number) =>
      Array.from({ length: n }, () => {
        const score = rand();
        return { score, agree: rand() < law(score) };
      });
    const steps = fitIsotonic(draw(4000));
    const held = draw(4000);
    const agreed = held.map((s) => s.agree);
    expect(
      expectedCalibrationError(
        held.map((s) => predictIsotonic(steps, s.score) ?? 0),
        agreed,
      ),
    ).toBeLessThan(0.03);
    expect(
      expectedCalibrationError(
        held.map((s) => s.score),
        agreed,
      ),
    ).toBeGreaterThan(0.1);
  });
});

describe("exitCurve + certifiedPoint: the guarantee on synthetic data whose truth is known", () => {
  /** Scores uniform on [0, 1]; the large model disagrees with probability d(s) = a·(1 - s)^b, falling with the score. */
  const trueDisagreement = (a: number, b: number, t: number) => (t >= 1 ? 0 : (a * (1 - t) ** b) / (b + 1));

  function trial(rand: () => number, n: number, a: number, b: number): Labelled[] {
    return Array.from({ length: n }, () => {
      const score = rand();
      return { score, agree: rand() >= a * (1 - score) ** b };
    });
  }

  it("certifies a threshold whose true disagreement exceeds the target in at most ~5% of runs", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.05, max: 0.9, noNaN: true }),
        fc.double({ min: 0.2, max: 3, noNaN: true }),
        fc.constantFrom(0.02, 0.05, 0.1),
        fc.integer({ min: 1, max: 2 ** 31 }),
        (a, b, target, seed) => {
          const rand = mulberry32(seed);
          const runs = 150;
          let violations = 0;
          for (let r = 0; r < runs; r++) {
            const point = certifiedPoint(exitCurve(trial(rand, 400, a, b), target), target);
            const threshold = point?.threshold ?? NEVER_EXIT;
            if (trueDisagreement(a, b, Math.min(1, threshold)) > target) violations++;
          }
          // 5% allowed; 150 runs put a binomial's 99.9th percentile at about 14.
          expect(violations).toBeLessThanOrEqual(14);
        },
      ),
      { numRuns: 12 },
    );
  });

  it("the same check catches the naive rule (empirical rate under the target, no bound)", () => {
    const rand = mulberry32(11);
    const [a, b, target] = [0.5, 1, 0.05];
    let violations = 0;
    for (let r = 0; r < 150; r++) {
      const curve = exitCurve(trial(rand, 400, a, b), target);
      const naive = curve.filter((p) => p.disagreements / p.exits <= target).at(-1);
      if (naive && trueDisagreement(a, b, naive.threshold) > target) violations++;
    }
    expect(violations).toBeGreaterThan(14);
  });

  it("walks from the strictest candidate that could certify the target down, one every step exits", () => {
    const samples = Array.from({ length: 100 }, (_, i) => ({ score: (i + 1) / 100, agree: i >= 10 }));
    expect(fewestToCertify(0.15)).toBe(19); // 0.85^19 = 0.046 ≤ 0.05 < 0.85^18
    const curve = exitCurve(samples, 0.15, { step: 20 });
    expect(curve.map((p) => p.exits)).toEqual([19, 39, 59, 79, 99]);
    expect(curve.map((p) => p.threshold)).toEqual([0.82, 0.62, 0.42, 0.22, 0.02]);
    expect(curve.at(-1)?.disagreements).toBe(9);
    expect(certifiedPoint(curve, 0.15)?.threshold).toBe(0.22);
    expect(certifiedPoint(exitCurve(samples, 0.01), 0.01)).toBeNull(); // 299 exits needed, 100 held
    expect(agreementByBand(samples, 2)).toEqual([
      { from: 0, to: 0.5, samples: 49, agreed: 39 },
      { from: 0.5, to: 1, samples: 51, agreed: 51 },
    ]);
  });
});

/** A small seeded generator, so a failing run can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
