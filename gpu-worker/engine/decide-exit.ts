/**
 * SEE, the small model's early-exit decision. Confidence is the geometric mean of
 * the chosen tokens' probabilities; consistency is the product of the answer
 * tokens' probabilities when the small model re-reads its answer with only the top
 * few percent of visual tokens. The decision score combines them (the paper's
 * average by default) and the answer exits when it clears the threshold.
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

export function decideExit(
  probabilities: number[],
  reread: number[],
  policy: ExitPolicy,
  threshold = policy.threshold,
) {
  const confidence = confidenceScore(probabilities);
  const consistency = consistencyScore(reread);
  const decision = decisionScore(confidence, consistency, policy.rule);
  return { confidence, consistency, decision, threshold, shouldExit: decision >= threshold };
}
