import { z } from "zod";

/** What one function measured for one request: the input of pricing. */
export const MeteringSchema = z.object({
  /**
   * Wall time the request held the function's concurrency slot (its accelerator), measured, not estimated: parsing,
   * image decoding and resizing, host work and the model runs (gpu-worker/occupancy.ts). In large-only modes the
   * small function's own part (its intake) is added to `large`, as there is no small metering to carry it. Engine
   * callers without a function around them (benchmarks) get the time inside model runs only.
   */
  accelerator_ms: z.number().nonnegative(),
  /** Estimated floating-point operations of the model runs (2 × MACs). */
  flops: z.number().nonnegative(),
  visual_tokens_total: z.number().int().nonnegative(),
  /** Visual tokens the decoder attended to after pruning (equal to total when unpruned). */
  visual_tokens_kept: z.number().int().nonnegative(),
  /**
   * Visual tokens whose embeddings this function's vision cache served (the image was not processed or run through
   * the vision graph again): all of `visual_tokens_total`, or 0. The answer's `cached_tokens` reports it.
   */
  visual_tokens_cached: z.number().int().nonnegative(),
  /** Every token of the prompt the model read: the chat template's text and the visual tokens (total). */
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  /** Accelerator class the function ran on (priced per class), e.g. `cpu`, `a10g`. */
  gpu_class: z.string().min(1),
});
export type Metering = z.infer<typeof MeteringSchema>;
