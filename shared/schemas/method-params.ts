/**
 * The method's per-request parameters: the one type carried from the edge to the engine. The edge validates the
 * public request (its model, `detail`, `stitch` extension, logprobs) into it; the small function's intake parses it
 * with this schema (it is the knob half of AnswerRequest); resolve-method.ts checks it against the loaded packs and
 * completes it with the serving defaults; the large function gets the part it needs, resolved (LargeMethodSchema).
 * A new knob is one field here (and, if public, one in StitchOptionsSchema; if it decides the answer, it is in the
 * answer-cache key already: edge/src/cache/cache-key.ts keys on every field but those named there).
 */
import { z } from "zod";
import { MODES } from "../paths.js";
import { ExitCalibrationsSchema, MaxDisagreementSchema } from "./shadow.js";

export const FALLBACKS = ["error", "small"] as const;

/**
 * Image detail, OpenAI's `detail`: how many visual tokens an image becomes, per processor kind (README, "Image
 * detail"): `low` the fewest the pack's recipe allows (tiles: one tile and no thumbnail; smart_resize: a small pixel
 * budget), `high` the pack's full recipe, `auto` the deployment's default (`STITCH_DEFAULT_DETAIL`). A `fixed`
 * processor reads every image the same way at each level.
 */
export const IMAGE_DETAILS = ["auto", "low", "high"] as const;
export type ImageDetailLevel = (typeof IMAGE_DETAILS)[number];
/** The levels `auto` resolves to: what a function reports it ran. */
export const RESOLVED_DETAILS = ["low", "high"] as const;
export type ResolvedDetail = (typeof RESOLVED_DETAILS)[number];

export const MAX_TOP_LOGPROBS = 20;

/** Per-request knobs of the method; each is validated again against the loaded packs. */
export const MethodParamsSchema = z.object({
  mode: z.enum(MODES).default("sgl"),
  max_tokens: z.number().int().min(1).max(64).default(8),
  /** Fraction of visual tokens the large model keeps from layer K on (sgp, fastv, sgl escalation). */
  retention: z.number().gt(0).max(1).optional(),
  /** Layer K at which the large model is pruned; must be one of the pack's split boundaries. */
  prune_layer: z.number().int().min(1).optional(),
  /** Exit threshold on the SEE decision score, overriding the configured one. */
  exit_threshold: z.number().min(0).max(1).optional(),
  /** Image detail level; `auto` (the default) is the small function's STITCH_DEFAULT_DETAIL. */
  detail: z.enum(IMAGE_DETAILS).default("auto"),
  /**
   * Image detail, for packs whose processor resizes by a pixel budget (smart_resize): bounds on the resized image's
   * area, within the range the detail level allows (`high`: the pack's own; `low`: up to the low budget). The visual
   * token count follows, the same for small and large.
   */
  min_pixels: z.number().int().positive().optional(),
  max_pixels: z.number().int().positive().optional(),
  /** If the large function fails: `error` (default) or answer with the small model's answer marked degraded. */
  fallback: z.enum(FALLBACKS).default("error"),
  /** Return the explanation (ranking, kept tokens, layout) with the answer. */
  explain: z.boolean().default(false),
  /** Return the logprobs of the answer's tokens, with this many top alternatives each (0-20); absent: none. */
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional(),
  /**
   * The quality dial: at most this fraction of early exits may disagree with the large model (95% confidence). The
   * edge serves it from its shadow curve as `exit_calibration`; it is not read past the edge.
   */
  max_disagreement: MaxDisagreementSchema.optional(),
  /**
   * Set by the edge: the threshold of its shadow calibration for this request, one entry per pack pair it has
   * calibrated; the small function takes its own pair's (below `exit_threshold`).
   */
  exit_calibration: ExitCalibrationsSchema.optional(),
  /** Set by the edge: false when the key opted out of shadow escalation (absent: the request may be sampled). */
  shadow: z.boolean().optional(),
});
export type MethodParams = z.infer<typeof MethodParamsSchema>;
export type MethodParamsInput = z.input<typeof MethodParamsSchema>;

/** The modes the large function runs: the large model plain, pruned by the small model's ranking, or by its own. */
export const LARGE_MODES = ["large", "sgp", "fastv"] as const;
export type LargeMode = (typeof LARGE_MODES)[number];

const knob = MethodParamsSchema.shape;
/**
 * The method as the small function resolved it, for the large function: a large-model mode, the pruning fixed (no
 * defaults between functions), the detail level resolved (`auto` never travels this hop) and the pixel budget the
 * small function resolved (smart_resize packs), used as is within the pack's bounds.
 */
export const LargeMethodSchema = MethodParamsSchema.pick({
  min_pixels: true,
  max_pixels: true,
  explain: true,
  logprobs: true,
}).extend({
  mode: z.enum(LARGE_MODES),
  max_tokens: knob.max_tokens.unwrap(),
  retention: knob.retention.unwrap(),
  prune_layer: knob.prune_layer.unwrap(),
  detail: z.enum(RESOLVED_DETAILS).default("high"),
});
export type LargeMethod = z.infer<typeof LargeMethodSchema>;
