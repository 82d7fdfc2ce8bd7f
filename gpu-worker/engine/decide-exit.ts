/**
 * SEE, the small model's early-exit decision. Confidence is the geometric mean of
 * the chosen tokens' probabilities; consistency is the product of the answer
 * tokens' probabilities when the small model re-reads its answer with only the top
 * few percent of visual tokens. The decision score combines them (the paper's
 * average by default) and the answer exits when it clears the threshold. Under a
 * rule that ignores consistency the re-read is not run (see needsReread).
 */
export const COMBINE_RULES = ["average", "geometric", "min", "confidence", "consistency"] as const;
export type CombineRule = (typeof COMBINE_RULES)[number];

export interface ExitPolicy {
  threshold: number;
  /** Fraction of visual tokens the consistency re-read keeps (pruned before the first layer). */
  retention: number;
  rule: CombineRule;
}

export function confidenceScore(probabilities: number[]): number {
  if (probabilities.length === 0) return 0;
  const logSum = probabilities.reduce((s, p) => s + Math.log(Math.max(p, 1e-12)), 0);
  return Math.exp(logSum / probabilities.length);
}

export function consistencyScore(probabilities: number[]): number {
  return probabilities.reduce((s, p) => s * p, 1);
}

/**
 * Whether the consistency re-read must run: it costs the small model a second pass,
 * wasted under the confidence rule unless the caller wants every score (calibration
 * and benchmarks compare rules on the same runs).
 */
export function needsReread(rule: CombineRule, scoreEveryRule = false): boolean {
  return scoreEveryRule || rule !== "confidence";
}

/** The consistency score of a run that had to make it (an engine loaded with scoreEveryRule). */
export function requireConsistency(exit: { consistency: number | null }): number {
  if (exit.consistency === null) throw new Error("SEE's re-read did not run: load the engine with scoreEveryRule");
  return exit.consistency;
}

export function decisionScore(confidence: number, consistency: number, rule: CombineRule): number {
  switch (rule) {
    case "average":
      return (confidence + consistency) / 2;
    case "geometric":
      return Math.sqrt(confidence * consistency);
    case "min":
      return Math.min(confidence, consistency);
    case "confidence":
      return confidence;
    case "consistency":
      return consistency;
  }
}

/** reread: the re-read's answer-token probabilities, or null where needsReread said it was not run. */
export function decideExit(
  probabilities: number[],
  reread: number[] | null,
  policy: ExitPolicy,
  threshold = policy.threshold,
) {
  const confidence = confidenceScore(probabilities);
  if (reread === null && needsReread(policy.rule)) throw new Error(`the ${policy.rule} rule needs the re-read`);
  const consistency = reread === null ? null : consistencyScore(reread);
  const decision = consistency === null ? confidence : decisionScore(confidence, consistency, policy.rule);
  return { confidence, consistency, decision, threshold, shouldExit: decision >= threshold };
}
