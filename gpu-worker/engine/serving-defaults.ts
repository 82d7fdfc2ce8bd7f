/**
 * Method defaults for a pack pair: the SEE exit policy and the large model's
 * pruning (layer K, retention r). The calibration tool writes them to
 * `<packs>/serving-defaults.json` for the pair it measured; env vars override.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { COMBINE_RULES, type CombineRule } from "./decide-exit.js";

/**
 * The offline calibrated score (`npm run calibrate`): the isotonic fit of "the escalation would have given the same
 * answer" on the decision score under the file's rule, on labelled items; `calibration` names it in every answer
 * (`offline:<seed>/<count>`). Read only with the rule it was fitted under.
 */
export const AgreementFitSchema = z.object({
  calibration: z.string().min(1).max(200),
  steps: z
    .array(z.object({ from: z.number().min(0).max(1), p: z.number().min(0).max(1) }))
    .min(1)
    .max(10_000),
});
export type AgreementFit = z.infer<typeof AgreementFitSchema>;

export const ServingDefaultsSchema = z.object({
  pair: z.object({ small: z.string(), large: z.string() }),
  exit: z.object({
    threshold: z.number().min(0).max(1),
    retention: z.number().gt(0).max(1),
    rule: z.enum(COMBINE_RULES),
  }),
  prune: z.object({ layer: z.number().int().min(1), retention: z.number().gt(0).max(1) }),
  calibration: z.record(z.string(), z.unknown()).optional(),
  agreement: AgreementFitSchema.optional(),
});
export type ServingDefaults = z.infer<typeof ServingDefaultsSchema>;

/**
 * Used when no calibration file matches the loaded pair: the paper's rule and the reference code's 5% re-read.
 * Its prune layer is a placeholder: the large pack's own first split layer takes its place (see below), since a
 * fixed layer number means nothing across packs of 4 and of 28 layers.
 */
export const FALLBACK_DEFAULTS: Omit<ServingDefaults, "pair"> = {
  exit: { threshold: 0.8, retention: 0.05, rule: "average" },
  prune: { layer: 1, retention: 0.35 },
};

export const SERVING_DEFAULTS_FILE = "serving-defaults.json";

export async function readServingDefaults(
  packsDir: string,
  small: string,
  large: string,
): Promise<Omit<ServingDefaults, "pair">> {
  let text: string;
  try {
    text = await readFile(join(packsDir, SERVING_DEFAULTS_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return FALLBACK_DEFAULTS;
    throw err;
  }
  // A present but malformed file is a deployment error: fail at start-up, not silently.
  const parsed = ServingDefaultsSchema.parse(JSON.parse(text));
  const matches = parsed.pair.small === small && parsed.pair.large === large;
  return matches ? parsed : FALLBACK_DEFAULTS;
}

export interface ServingOverrides {
  exitThreshold?: number;
  exitRetention?: number;
  exitRule?: CombineRule;
  pruneLayer?: number;
  pruneRetention?: number;
}

/**
 * The method defaults in force for a pair, layered: built-in fallback → the
 * calibration file for this exact pair → explicit overrides (env vars).
 */
export async function resolveServingDefaults(
  packsDir: string,
  versions: { small: string; large: string },
  overrides: ServingOverrides = {},
  /** The large pack's split layers: without a calibration for the pair, its first one is the default K. */
  largeSplitLayers: number[] = [],
): Promise<Omit<ServingDefaults, "pair">> {
  const read = await readServingDefaults(packsDir, versions.small, versions.large);
  const packLayer = largeSplitLayers[0];
  const base =
    read === FALLBACK_DEFAULTS && packLayer !== undefined
      ? { ...read, prune: { ...read.prune, layer: packLayer } }
      : read;
  const exit = {
    threshold: overrides.exitThreshold ?? base.exit.threshold,
    retention: overrides.exitRetention ?? base.exit.retention,
    rule: overrides.exitRule ?? base.exit.rule,
  };
  const prune = {
    layer: overrides.pruneLayer ?? base.prune.layer,
    retention: overrides.pruneRetention ?? base.prune.retention,
  };
  // The fit holds for the score it was fitted on (rule, re-read) and the escalation it was measured against (K, r):
  // an override of any of them makes it another measurement's. The threshold is free: the fit covers every score.
  const measured =
    exit.rule === base.exit.rule &&
    exit.retention === base.exit.retention &&
    prune.layer === base.prune.layer &&
    prune.retention === base.prune.retention;
  return {
    exit,
    prune,
    ...(base.calibration ? { calibration: base.calibration } : {}),
    ...(base.agreement && measured ? { agreement: base.agreement } : {}),
  };
}
