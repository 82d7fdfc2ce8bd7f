import { z } from "zod";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "sha256 hex digest");

/**
 * The manifest (`manifest.json`) of a model pack: everything the engine needs
 * to load, check and run one model of a pair. Written by the exporter
 * (`model-training/export_packs.py`), read by the GPU functions.
 */
export const ModelPackManifestSchema = z.object({
  format: z.literal("stitch-model-pack/1"),
  /** Two packs form a pair only if family and visual grid match. */
  family: z.string().min(1),
  role: z.enum(["small", "large"]),
  name: z.string().min(1),
  version: z.string().min(1),
  image: z.object({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    /** Per-channel normalisation after scaling pixels to [0, 1]: (x - mean) / std. */
    mean: z.tuple([z.number(), z.number(), z.number()]),
    std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  }),
  visual_grid: z.object({
    rows: z.number().int().positive(),
    cols: z.number().int().positive(),
    patch_px: z.number().int().positive(),
  }),
  tokenizer: z.string().min(1),
  /** Prompt with `{question}` and the image placeholder token, e.g. `<image> question: {question} answer:`. */
  prompt_template: z.string().includes("{question}"),
  image_token: z.string().min(1),
  stop_tokens: z.array(z.string()).min(1),
  /** Longest question in tokens the model was trained for; longer ones are refused. */
  max_question_tokens: z.number().int().positive(),
  decoder: z.object({
    hidden: z.number().int().positive(),
    heads: z.number().int().positive(),
    layers: z.number().int().positive(),
    mlp_hidden: z.number().int().positive(),
    vocab: z.number().int().positive(),
    vision_flops_per_image: z.number().nonnegative(),
  }),
  /** Layers at which the decoder is split into segments (the layers K the engine may prune at). */
  split_layers: z.array(z.number().int().positive()),
  graphs: z.object({
    vision: z.string(),
    embed: z.string(),
    /** Consecutive decoder segments [first_layer, end_layer); the last one outputs logits. */
    segments: z
      .array(
        z.object({
          file: z.string(),
          first_layer: z.number().int().nonnegative(),
          end_layer: z.number().int().positive(),
        }),
      )
      .min(1),
  }),
  /** sha256 of every file the pack lists, checked at load. */
  checksums: z.record(z.string(), Sha256),
  /** Free-form provenance: training config and measured accuracy. */
  training: z.record(z.string(), z.unknown()).optional(),
});
export type ModelPackManifest = z.infer<typeof ModelPackManifestSchema>;
