/**
 * Shadow escalation's messages (README, "Shadow escalation and the quality dial"): the exit policy the edge passes
 * to the small function with each request, and the sample the small function reports back to the edge after a
 * shadow run. Nothing of the image or the text travels in a sample: the pack pair, the decision score, whether the
 * large model agreed, and what the large run cost.
 */
import { z } from "zod";
import { type Band, NEVER_EXIT } from "../shadow/exit-curve.js";
import { MeteringSchema } from "./metering.js";

/** Names the calibration a threshold came from: `offline` (the deployment's file or env), `request`, or a shadow curve's id. */
export const CalibrationIdSchema = z.string().min(1).max(200);

/** No "|" in a name: the edge keys samples by `<small>|<large>` (edge/src/shadow/samples-db.ts). */
const PackName = z
  .string()
  .max(200)
  .regex(/^[^|]*$/, "a pack name holds no |");
/** A pack pair as the answer's `models` names it (modelVersion: `name@version`). */
export const PackPairSchema = z.object({ small: PackName, large: PackName }).strict();
export type PackPair = z.infer<typeof PackPairSchema>;

/** The most pack pairs the edge calibrates at once (edge/src/shadow/samples-db.ts): a rolling upgrade's two, and room. */
export const MAX_CALIBRATED_PAIRS = 4;

/**
 * Edge → small function: for one pack pair, the threshold to exit at (NEVER_EXIT: nothing exits) and the calibration
 * it came from. `pair: null` stands for every pair without an entry of its own (a dial no sample of it can certify).
 */
export const ExitCalibrationSchema = z
  .object({
    pair: PackPairSchema.nullable(),
    threshold: z.number().min(0).max(NEVER_EXIT),
    calibration: CalibrationIdSchema,
  })
  .strict();
export type ExitCalibration = z.infer<typeof ExitCalibrationSchema>;

const samePair = (a: PackPair | null, b: PackPair | null) => a?.small === b?.small && a?.large === b?.large;

/**
 * The edge sends the policy of every pair it has calibrated, since it cannot know which pair will answer; the small
 * function takes its own (exitCalibrationFor). At most one entry per pair, plus the one for any other pair.
 */
export const ExitCalibrationsSchema = z
  .array(ExitCalibrationSchema)
  .min(1)
  .max(MAX_CALIBRATED_PAIRS + 1)
  .refine((entries) => entries.every((e, i) => entries.findIndex((o) => samePair(o.pair, e.pair)) === i), {
    message: "one entry per pack pair",
  });

/** The entry of `pair`, else the one for any other pair, else none (the small function's offline threshold). */
export function exitCalibrationFor(
  entries: readonly ExitCalibration[] | undefined,
  pair: PackPair,
): ExitCalibration | undefined {
  return entries?.find((e) => samePair(e.pair, pair)) ?? entries?.find((e) => e.pair === null);
}

/** A request's quality dial: the most early exits that may disagree with the large model (a fraction; 0 no sample can certify). */
export const MaxDisagreementSchema = z.number().gt(0).max(1);

/** Small function → edge: POST /internal/shadow-samples, signed with the functions' secret. */
export const ShadowSampleSchema = z.object({
  request_id: z.string().min(1).max(128),
  /** The pack pair, as the answer's `models` names it. */
  pair: PackPairSchema,
  /** The SEE decision score of the early exit. */
  decision: z.number().min(0).max(1),
  threshold: z.number().min(0).max(NEVER_EXIT),
  calibration: CalibrationIdSchema,
  /** Whether the normalised answers are equal (shared/shadow/normalise-answer.ts). */
  agree: z.boolean(),
  /** The large function's metering of the shadow run, the operator's cost; null: an escalation, billed as usual. */
  large: MeteringSchema.nullable(),
});
export type ShadowSample = z.infer<typeof ShadowSampleSchema>;

export const SHADOW_SAMPLES_PATH = "/internal/shadow-samples";
/** The header that marks an escalation as a shadow: admitted only to an idle slot, preempted by paying work. */
export const PRIORITY_HEADER = "x-stitch-priority";

/** GET /admin/shadow: what the operator sees of shadow escalation (edge/src/shadow/shadow-report.ts). */
export interface ShadowReport {
  /** The pair reported on (`<small>|<large>`): `?pair=`, default the one that reported last. */
  pair: string | null;
  /** Every pair calibrated now (at most MAX_CALIBRATED_PAIRS), the one that reported last first, with its threshold. */
  pairs: { pair: string; samples: number; threshold: number | null }[];
  samples: number;
  target: number | null;
  min_samples: number;
  /** The threshold an `sgl` request without a dial is served now; null: the small function's offline one. */
  threshold: number | null;
  calibration: string;
  /** Among the window's samples at or above the threshold (the exits it makes): null when it is the offline one. */
  estimate: { exits: number; disagreements: number; rate: number; upper95: number } | null;
  bands: Band[];
  exits: { small: number; large: number; rate: number | null };
  shadow_cost: { samples: number; accelerator_ms_large: number; share_of_large: number | null };
}
