import { z } from "zod";

/** What one function measured for one request: the input of pricing. */
export const MeteringSchema = z.object({
  /** Wall time spent inside model runs (ONNX sessions), measured, not estimated. */
  accelerator_ms: z.number().nonnegative(),
  /** Estimated floating-point operations of the model runs (2 × MACs). */
  flops: z.number().nonnegative(),
  visual_tokens_total: z.number().int().nonnegative(),
  /** Visual tokens the decoder attended to after pruning (equal to total when unpruned). */
  visual_tokens_kept: z.number().int().nonnegative(),
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  /** Accelerator class the function ran on (priced per class), e.g. `cpu`, `a10g`. */
  gpu_class: z.string().min(1),
});
export type Metering = z.infer<typeof MeteringSchema>;
