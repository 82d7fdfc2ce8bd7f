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

/**
 * Public model names (OpenAI `model` field) and the mode each selects. A Map, not an object literal: a name is
 * request data, and `{}`'s inherited keys (`toString`, `constructor`, `__proto__`) must never look like models.
 */
export const MODEL_NAMES: ReadonlyMap<string, Mode> = new Map<string, Mode>([
  ["stitch-sgl", "sgl"],
  ["stitch-small", "small"],
  ["stitch-large", "large"],
  ["stitch-sgp", "sgp"],
  ["stitch-fastv", "fastv"],
]);

/** The mode a public model name selects; undefined for any other string. */
export const modeOfModel = (name: string): Mode | undefined => MODEL_NAMES.get(name);

/**
 * `record[key]` only when `key` is the record's own property: the one way to look request or upstream data up in
 * a parsed JSON object or a config record (never the prototype's `toString`, `constructor`, `__proto__` ...).
 */
export function ownValue<V>(record: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
