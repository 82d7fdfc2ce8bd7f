import { describe, expect, it } from "vitest";
import { INTERNVL3_RECIPE } from "../testing.js";
import { type ModelPackManifest, ModelPackManifestSchema } from "./model-pack.js";

const digest = (c: string) => c.repeat(64);

/** The manifest as plain JSON that a test may break in any way, e.g. a string where a number belongs. */
// biome-ignore lint/suspicious/noExplicitAny: the point of these tests is writing values the type forbids
type LooseManifest = Record<string, any>;

const manifest: ModelPackManifest = {
  format: "stitch-model-pack/2",
  family: "internvl3",
  role: "small",
  name: "internvl3-1b",
  version: "1.0.0",
  image: INTERNVL3_RECIPE,
  prompt: {
    tokenizer: "tokenizer.json",
    chat_template: "{% for m in messages %}{{ m.role }}{% endfor %}",
    default_system_prompt: null,
    image_placeholder: "<IMG_CONTEXT>",
    image_span: { start: "<img>", context: "<IMG_CONTEXT>", end: "</img>" },
    stop_token_ids: [151645, 151643],
    bos_token: null,
    eos_token: "<|im_end|>",
    max_text_tokens: 2048,
    context_tokens: 8192,
  },
  decoder: {
    hidden: 896,
    layers: 24,
    heads: 14,
    kv_heads: 2,
    head_dim: 64,
    mlp_hidden: 4864,
    mlp: "swiglu",
    vocab: 151674,
    rope: { theta: 1e6, positions: "1d" },
    dtype: "float32",
  },
  vision: { hidden: 1024, flops_per_token: 1.5e9 },
  split_layers: [8, 12],
  graphs: {
    vision: "vision.onnx",
    embed: "embed.onnx",
    segments: [
      { file: "decoder-0-8.onnx", first_layer: 0, end_layer: 8 },
      { file: "decoder-8-12.onnx", first_layer: 8, end_layer: 12 },
      { file: "decoder-12-24.onnx", first_layer: 12, end_layer: 24 },
    ],
    external_data: ["decoder-12-24.onnx.data"],
  },
  weights: { dtype: "int4", block_size: 32 },
  checksums: { "vision.onnx": digest("a"), "embed.onnx": digest("b"), "tokenizer.json": digest("0") },
  conformance: { fixture: "fixture.json", tolerance: { logits: 1e-3, attention: 1e-3 } },
  provenance: { source: "OpenGVLab/InternVL3-1B-hf", transformers: "4.57.1" },
  training: { steps: 2000 },
};

/** A deep copy of the valid manifest with one change applied. */
function withChange(change: (m: LooseManifest) => void): unknown {
  const copy: LooseManifest = structuredClone(manifest);
  change(copy);
  return copy;
}

describe("ModelPackManifestSchema", () => {
  it("parses a valid manifest unchanged", () => {
    expect(ModelPackManifestSchema.parse(manifest)).toEqual(manifest);
  });

  it("parses a manifest without training notes (an exported checkpoint has none)", () => {
    const { training: _, ...bare } = manifest;
    expect(ModelPackManifestSchema.parse(bare)).toEqual(bare);
  });

  it("reads a missing external-data list as none", () => {
    const { external_data: _, ...graphs } = manifest.graphs;
    expect(ModelPackManifestSchema.parse({ ...manifest, graphs }).graphs.external_data).toEqual([]);
  });

  it("reads a missing weights field as float32 (packs written before weight types)", () => {
    const { weights: _, ...bare } = manifest;
    expect(ModelPackManifestSchema.parse(bare).weights).toEqual({ dtype: "float32" });
  });

  it.each<[string, (m: LooseManifest) => void, (string | number)[]]>([
    ["an unknown format version", (m) => (m.format = "stitch-model-pack/1"), ["format"]],
    ["an empty family", (m) => (m.family = ""), ["family"]],
    ["an unknown role", (m) => (m.role = "medium"), ["role"]],
    ["an unknown image processor", (m) => (m.image.processor = "letterbox"), ["image", "processor"]],
    ["a zero tile width", (m) => (m.image.tile.width = 0), ["image", "tile", "width"]],
    ["a zero std channel", (m) => (m.image.std[1] = 0), ["image", "std", 1]],
    ["a non-numeric mean channel", (m) => (m.image.mean[2] = "0.5"), ["image", "mean", 2]],
    ["a fractional grid size", (m) => (m.image.grid.rows = 7.5), ["image", "grid", "rows"]],
    ["a pixel shuffle above 1", (m) => (m.image.pixel_shuffle = 2), ["image", "pixel_shuffle"]],
    ["a missing patch size", (m) => delete m.image.patch_px, ["image", "patch_px"]],
    ["an unknown resampling filter", (m) => (m.image.resample = "box"), ["image", "resample"]],
    ["an empty chat template", (m) => (m.prompt.chat_template = ""), ["prompt", "chat_template"]],
    ["no stop ids", (m) => (m.prompt.stop_token_ids = []), ["prompt", "stop_token_ids"]],
    ["a tokenizer path outside the pack", (m) => (m.prompt.tokenizer = "../tokenizer.json"), ["prompt", "tokenizer"]],
    ["a negative layer count", (m) => (m.decoder.layers = -3), ["decoder", "layers"]],
    ["no KV head count", (m) => delete m.decoder.kv_heads, ["decoder", "kv_heads"]],
    ["an unknown position scheme", (m) => (m.decoder.rope.positions = "alibi"), ["decoder", "rope", "positions"]],
    ["a split at layer 0", (m) => (m.split_layers = [0, 2]), ["split_layers", 0]],
    ["no decoder segments", (m) => (m.graphs.segments = []), ["graphs", "segments"]],
    ["a segment ending at 0", (m) => (m.graphs.segments[1].end_layer = 0), ["graphs", "segments", 1, "end_layer"]],
    ["a segment without a file", (m) => delete m.graphs.segments[0].file, ["graphs", "segments", 0, "file"]],
    ["an unknown weight type", (m) => (m.weights.dtype = "int2"), ["weights", "dtype"]],
    ["a zero block size", (m) => (m.weights.block_size = 0), ["weights", "block_size"]],
    ["a short checksum", (m) => (m.checksums["embed.onnx"] = "abc123"), ["checksums", "embed.onnx"]],
    ["an upper-case checksum", (m) => (m.checksums["vision.onnx"] = digest("A")), ["checksums", "vision.onnx"]],
    ["no provenance", (m) => delete m.provenance, ["provenance"]],
    ["training that is not an object", (m) => (m.training = "2000 steps"), ["training"]],
  ])("rejects %s", (_, change, path) => {
    const result = ModelPackManifestSchema.safeParse(withChange(change));
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(path);
    expect(result.error?.issues).toHaveLength(1);
  });

  it("rejects a mean with two channels at the tuple's path", () => {
    const result = ModelPackManifestSchema.safeParse(withChange((m) => (m.image.mean = [0.5, 0.5])));
    expect(result.error?.issues[0]?.path).toEqual(["image", "mean"]);
  });
});
