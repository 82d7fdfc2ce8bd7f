import { z } from "zod";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "sha256 hex digest");
const Rgb = z.tuple([z.number(), z.number(), z.number()]);
const PositiveRgb = z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]);
const FileName = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9._-]+$/, "a file name inside the pack folder");

const Normalisation = {
  /** The resampling filter of the family's processor (PIL's names). */
  resample: z.enum(["bicubic", "bilinear", "lanczos"]),
  /** Pixels are multiplied by this (1/255) and then normalised per channel: (x·rescale − mean) / std. */
  rescale: z.number().positive(),
  mean: Rgb,
  std: PositiveRgb,
};

/**
 * How an image becomes the vision graph's input, as the family's own processor does it. The engine picks its
 * image processor by `processor`, never by family name:
 * - `fixed`: one tile, the whole image stretched to `tile` (the embedded pair);
 * - `tiles`: GotOcr2's `crop_to_patches` (InternVL): the image is resized to the best grid of `tile`-sized tiles
 *   (min_tiles..max_tiles, chosen by aspect ratio) and cut row-major, plus a `tile`-sized thumbnail when there is
 *   more than one tile.
 */
export const TiledImageRecipeSchema = z.object({
  processor: z.enum(["fixed", "tiles"]),
  tile: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }),
  min_tiles: z.number().int().positive(),
  max_tiles: z.number().int().positive(),
  thumbnail: z.boolean(),
  ...Normalisation,
  /** Vision patch size in pixels and the pixel-shuffle factor after the tower (0.5 = 2×2 patches per token). */
  patch_px: z.number().int().positive(),
  pixel_shuffle: z.number().positive().max(1),
  /** The visual tokens of one tile, row-major: rows × cols = tokens_per_tile. */
  grid: z.object({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
  tokens_per_tile: z.number().int().positive(),
});
export type TiledImageRecipe = z.infer<typeof TiledImageRecipeSchema>;

/**
 * - `smart_resize`: Qwen2-VL's processor: the image is resized (aspect ratio kept) to multiples of
 *   patch_px · merge within [min_pixels, max_pixels], cut into patch_px patches (each repeated temporal_patch times,
 *   as a still frame), and every merge × merge patches become one visual token: (H / 28) · (W / 28) tokens,
 *   row-major, for the 14-px patches and 2×2 merge every Qwen2(.5)-VL size shares. A request may lower
 *   max_pixels (image detail): the token count follows, the same for small and large.
 */
export const SmartResizeRecipeSchema = z.object({
  processor: z.literal("smart_resize"),
  patch_px: z.number().int().positive(),
  merge: z.number().int().positive(),
  temporal_patch: z.number().int().positive(),
  min_pixels: z.number().int().positive(),
  max_pixels: z.number().int().positive(),
  /** Window of the vision tower's windowed-attention layers, in pixels (Qwen2.5-VL: 112); null: none (Qwen2-VL). */
  window_px: z.number().int().positive().nullable(),
  ...Normalisation,
});
export type SmartResizeRecipe = z.infer<typeof SmartResizeRecipeSchema>;

export const ImageRecipeSchema = z.discriminatedUnion("processor", [TiledImageRecipeSchema, SmartResizeRecipeSchema]);
export type ImageRecipe = z.infer<typeof ImageRecipeSchema>;

/**
 * The prompt: the chat template renders the conversation with `image_placeholder` where the image goes; the
 * engine replaces the placeholder by the visual span `[start] + context × visual tokens + [end]` and puts the
 * vision graph's embeddings on the context tokens (vLLM's PromptReplacement, as data).
 */
export const PromptSchema = z.object({
  tokenizer: FileName,
  /** Jinja, rendered with `messages`, `add_generation_prompt` (and `bos_token`/`eos_token` when set). */
  chat_template: z.string().min(1),
  /** Used when the conversation has no system message; null = none. */
  default_system_prompt: z.string().nullable(),
  image_placeholder: z.string().min(1),
  image_span: z.object({
    start: z.string().min(1).nullable(),
    context: z.string().min(1),
    end: z.string().min(1).nullable(),
  }),
  stop_token_ids: z.array(z.number().int().nonnegative()).min(1),
  bos_token: z.string().nullable(),
  eos_token: z.string().nullable(),
  /** Longest user text (all text parts of all user turns together) in tokens; longer is refused. */
  max_text_tokens: z.number().int().positive(),
  /** Positions the decoder handles: visual span + text + generated tokens. */
  context_tokens: z.number().int().positive(),
});
export type PromptRecipe = z.infer<typeof PromptSchema>;

export const POSITION_SCHEMES = ["1d", "mrope"] as const;

export const DecoderSchema = z.object({
  hidden: z.number().int().positive(),
  layers: z.number().int().positive(),
  heads: z.number().int().positive(),
  kv_heads: z.number().int().positive(),
  head_dim: z.number().int().positive(),
  mlp_hidden: z.number().int().positive(),
  /** `swiglu`: three matrices (gate, up, down); `gelu`: two. Only the FLOPs estimate reads it. */
  mlp: z.enum(["swiglu", "gelu"]),
  vocab: z.number().int().positive(),
  rope: z.object({
    theta: z.number().positive(),
    /**
     * `1d`: position_ids [1, T], the token's index. `mrope` (Qwen2-VL): position_ids [3, 1, T] (temporal, row,
     * column): text t = h = w; a visual token (s, s + row, s + col) after s text positions; text after the image
     * resumes at the largest position + 1.
     */
    positions: z.enum(POSITION_SCHEMES),
    /** mrope only: how the rotary frequencies split between t, h and w; sums to head_dim / 2. */
    mrope_section: z.array(z.number().int().positive()).length(3).optional(),
  }),
  /** Element type of the KV cache and the graphs' float inputs and outputs. */
  dtype: z.enum(["float32", "float16"]),
});

/**
 * The element type of a pack's weights, one for all its graphs (small and large may differ). The graphs' inputs and
 * outputs keep `decoder.dtype` whatever the weights (casts inside the graphs), and softmax and the attention sums
 * stay float32 in every type:
 * - `float32`; `float16` (for GPUs: onnxruntime's CPU provider runs it by casting to float32, weights included);
 * - `int8`: every matrix in signed int8 (7-bit values, so that no CPU's integer kernel saturates) with a scale
 *   per output column, activations quantized per call (dynamic int8 MatMul); `int4`: MatMulNBits, 4-bit blocks of
 *   `block_size` along the input dimension with a scale and zero point each; in both the embedding table is
 *   GatherBlockQuantized in blocks of `block_size`;
 * - `bfloat16`: part of the contract, but onnxruntime's CPU provider has no kernels for it: the exporter refuses
 *   to write it and the engine refuses it on the CPU.
 */
export const WEIGHT_TYPES = ["float32", "float16", "bfloat16", "int8", "int4"] as const;
export type WeightType = (typeof WEIGHT_TYPES)[number];

export const WeightsSchema = z.object({
  dtype: z.enum(WEIGHT_TYPES),
  /** int8 and int4: weights per quantization block (one scale and zero point each). */
  block_size: z.number().int().positive().optional(),
});

const SegmentSchema = z.object({
  file: FileName,
  first_layer: z.number().int().nonnegative(),
  end_layer: z.number().int().positive(),
});

/**
 * The manifest (`manifest.json`) of a model pack, contract version 2: everything the engine needs to load, check
 * and run one model of a pair without knowing its name. Written by the exporters (`model-export/` for
 * transformers checkpoints, `model-training/export_packs.py` for the embedded pair), read by the GPU functions.
 *
 * The graphs' input and output names are fixed by this contract (see model-packs/README.md, "Pack contract v2")
 * and checked against each ONNX session at load:
 * - vision (fixed, tiles): `pixel_values` [tiles, 3, H, W] → `visual_embeds` [tiles, tokens_per_tile, hidden];
 * - vision (smart_resize): `pixel_values` [P, 3 · temporal_patch · patch_px²] (P patches in the processor's
 *   order), `vision_position_ids` [P, 2] (row, column of each patch), `window_index` [P / merge²] (the order of
 *   the merged tokens inside the windows), `window_segments` [P] (window of each patch in that order; the windowed
 *   layers attend within a window) → `visual_embeds` [P / merge², hidden], back in row-major order;
 * - embed: `input_ids` [1, T] → `inputs_embeds` [1, T, hidden];
 * - segment [a, b): `hidden_states` [1, T, hidden], `position_ids` [1, T] (1d) or [3, 1, T] (mrope), `attention_mask` [1, P + T],
 *   `query_weights` [1, T], `past_key_l` / `past_value_l` [1, kv_heads, P, head_dim] for a ≤ l < b, and in the
 *   last segment `logit_rows` [R] → `hidden_out` [1, T, hidden] (or `logits` [1, R, vocab] in the last segment),
 *   `present_key_l` / `present_value_l`, `attention_received` [1, P + T] (attention each key position receives,
 *   summed over the segment's layers and heads and over the queries weighted by `query_weights`) and
 *   `attention_last` [1, P + T] (the last query's attention at the segment's last layer, summed over heads).
 */
export const ModelPackManifestSchema = z.object({
  format: z.literal("stitch-model-pack/2"),
  /** Free text for people; the pair rule compares the image recipe, not this. */
  family: z.string().min(1),
  role: z.enum(["small", "large"]),
  name: z.string().min(1),
  version: z.string().min(1),
  image: ImageRecipeSchema,
  prompt: PromptSchema,
  decoder: DecoderSchema,
  /** The tower's width, and its FLOPs per visual token it outputs (a tile's FLOPs / tokens per tile). */
  vision: z.object({ hidden: z.number().int().positive(), flops_per_token: z.number().nonnegative() }),
  /** The weight type of every graph; packs written before it existed are float32. */
  weights: WeightsSchema.default({ dtype: "float32" }),
  /** Layers at which the decoder is split into segments (the layers K the engine may prune at). */
  split_layers: z.array(z.number().int().positive()),
  graphs: z.object({
    vision: FileName,
    embed: FileName,
    /** Consecutive decoder segments [first_layer, end_layer); the last one outputs logits. */
    segments: z.array(SegmentSchema).min(1),
    /** External weight files (ONNX external data) the graphs read; checksummed like the graphs. */
    external_data: z.array(FileName).default([]),
    /**
     * Optional (packs without it decode step by step): `steps` greedy decode steps in one run, for GPUs where every
     * run returns the KV cache to the host. `token_id` [1], `position` [1], `past_key_l` / `past_value_l` for every
     * layer (each its own length) → `token_ids` [K], `probabilities` [K] (the chosen token's softmax probability),
     * `present_key_l` / `present_value_l` (past + K columns), and per segment `attention_received_<first_layer>`
     * [K, P + K]: row i the attention each key receives from the token fed at step i, summed over the segment's
     * layers and heads (zero after the P + i + 1 keys that step has). 1-D positions only.
     */
    decode_steps: z.object({ file: FileName, steps: z.number().int().min(2) }).optional(),
  }),
  /** sha256 of every file the pack lists, checked at load. */
  checksums: z.record(z.string(), Sha256),
  conformance: z.object({
    fixture: FileName,
    tolerance: z.object({ logits: z.number().positive(), attention: z.number().positive() }),
  }),
  /** Where the weights came from and what wrote the pack (source checkpoint, library and opset versions). */
  provenance: z.record(z.string(), z.unknown()),
  /** Free-form: training config and measured accuracy (embedded pair). */
  training: z.record(z.string(), z.unknown()).optional(),
});
export type ModelPackManifest = z.infer<typeof ModelPackManifestSchema>;
