/** Which part of the system produced an answer; it decides the price. */
export const PATHS = ["cache", "small", "large"] as const;
export type AnswerPath = (typeof PATHS)[number];

/**
 * Inference modes, selectable per request for A/B comparisons:
 * - `sgl`: small model first; exit early (SEE) or escalate to the large model pruned by the small ranking (SGP);
 * - `small`: small model only; `large`: large model only, unpruned;
 * - `sgp`: always escalate, pruned by the small model's ranking;
 * - `fastv`: large model pruned at layer K by its own attention at layer K-1 (baseline).
 */
export const MODES = ["sgl", "small", "large", "sgp", "fastv"] as const;
export type Mode = (typeof MODES)[number];

/** Public model names (OpenAI `model` field) and the mode each selects. */
export const MODEL_NAMES: Record<string, Mode> = {
  "stitch-sgl": "sgl",
  "stitch-small": "small",
  "stitch-large": "large",
  "stitch-sgp": "sgp",
  "stitch-fastv": "fastv",
};
