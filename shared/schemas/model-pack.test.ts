import { describe, expect, it } from "vitest";
import { type ModelPackManifest, ModelPackManifestSchema } from "./model-pack.js";

const digest = (c: string) => c.repeat(64);

/** The manifest as plain JSON that a test may break in any way, e.g. a string where a number belongs. */
// biome-ignore lint/suspicious/noExplicitAny: the point of these tests is writing values the type forbids
type LooseManifest = Record<string, any>;

const manifest: ModelPackManifest = {
  format: "stitch-model-pack/1",
  family: "stitch-scenes-v1",
  role: "small",
  name: "stitch-small",
  version: "1.0.0",
  image: { width: 96, height: 96, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  visual_grid: { rows: 8, cols: 8, patch_px: 12 },
  tokenizer: "tokenizer.json",
  prompt_template: "<image> {question} answer:",
  image_token: "<image>",
  stop_tokens: ["<eos>"],
  max_question_tokens: 16,
  decoder: { hidden: 96, heads: 4, layers: 3, mlp_hidden: 384, vocab: 64, vision_flops_per_image: 1e6 },
  split_layers: [1, 2],
  graphs: {
    vision: "vision.onnx",
    embed: "embed.onnx",
    segments: [
      { file: "decoder-0-1.onnx", first_layer: 0, end_layer: 1 },
      { file: "decoder-1-3.onnx", first_layer: 1, end_layer: 3 },
    ],
  },
  checksums: { "vision.onnx": digest("a"), "embed.onnx": digest("b"), "tokenizer.json": digest("0") },
  training: { steps: 2000, accuracy: { small: 0.61 } },
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

  it("parses a manifest without training provenance", () => {
    const { training: _, ...bare } = manifest;
    expect(ModelPackManifestSchema.parse(bare)).toEqual(bare);
  });

  it.each<[string, (m: LooseManifest) => void, (string | number)[]]>([
    ["an unknown format version", (m) => (m.format = "stitch-model-pack/2"), ["format"]],
    ["an empty family", (m) => (m.family = ""), ["family"]],
    ["an unknown role", (m) => (m.role = "medium"), ["role"]],
    ["a zero image width", (m) => (m.image.width = 0), ["image", "width"]],
    ["a zero std channel", (m) => (m.image.std[1] = 0), ["image", "std", 1]],
    ["a non-numeric mean channel", (m) => (m.image.mean[2] = "0.5"), ["image", "mean", 2]],
    ["a fractional grid size", (m) => (m.visual_grid.rows = 7.5), ["visual_grid", "rows"]],
    ["a missing patch size", (m) => delete m.visual_grid.patch_px, ["visual_grid", "patch_px"]],
    ["a prompt template without {question}", (m) => (m.prompt_template = "<image> answer:"), ["prompt_template"]],
    ["no stop tokens", (m) => (m.stop_tokens = []), ["stop_tokens"]],
    ["a negative layer count", (m) => (m.decoder.layers = -3), ["decoder", "layers"]],
    ["a split at layer 0", (m) => (m.split_layers = [0, 2]), ["split_layers", 0]],
    ["no decoder segments", (m) => (m.graphs.segments = []), ["graphs", "segments"]],
    ["a segment ending at 0", (m) => (m.graphs.segments[1].end_layer = 0), ["graphs", "segments", 1, "end_layer"]],
    ["a segment without a file", (m) => delete m.graphs.segments[0].file, ["graphs", "segments", 0, "file"]],
    ["a short checksum", (m) => (m.checksums["embed.onnx"] = "abc123"), ["checksums", "embed.onnx"]],
    ["an upper-case checksum", (m) => (m.checksums["vision.onnx"] = digest("A")), ["checksums", "vision.onnx"]],
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
