/** Reads a model pack from disk: manifest schema, file checksums, and the pair rule. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ModelPackManifest, ModelPackManifestSchema } from "../../shared/index.js";
import type { ImageProcessor } from "./image-processor/image-processor.js";
import { imageProcessor } from "./image-processor/registry.js";
import type { PackInfo } from "./types.js";

export class ModelPackError extends Error {
  override name = "ModelPackError";
}

export interface ModelPack {
  dir: string;
  manifest: ModelPackManifest;
  /** The image processor of the manifest's recipe, chosen once here. */
  processor: ImageProcessor;
}

/** Reads and validates a pack's manifest only: enough to check a pair or name a version, no graph is read. */
export async function readPackManifest(dir: string): Promise<ModelPackManifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
  } catch (cause) {
    throw new ModelPackError(`cannot read ${join(dir, "manifest.json")}: ${(cause as Error).message}`);
  }
  const parsed = ModelPackManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelPackError(`invalid manifest in ${dir}: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  return parsed.data;
}

/** Every file a pack lists: each must carry a checksum, verified at load. */
export function packFiles(m: ModelPackManifest): string[] {
  const g = m.graphs;
  return [
    g.vision,
    g.embed,
    ...g.segments.map((s) => s.file),
    ...(g.decode_steps ? [g.decode_steps.file] : []),
    ...g.external_data,
    m.prompt.tokenizer,
  ];
}

/** Parses and checks a pack's manifest and verifies the sha256 of every file it lists. */
export async function readModelPack(dir: string): Promise<ModelPack> {
  const manifest = await readPackManifest(dir);
  for (const file of packFiles(manifest)) {
    const expected = manifest.checksums[file];
    if (!expected) throw new ModelPackError(`${dir}: no checksum for ${file}`);
    if ((await sha256File(join(dir, file))) !== expected)
      throw new ModelPackError(`${dir}: checksum mismatch for ${file}`);
  }
  checkSegments(dir, manifest);
  checkDecoder(dir, manifest);
  const processor = imageProcessor(manifest.image);
  // The numbers of the recipe must agree with each other, or token i would not mean what the pair assumes.
  const problem = processor.recipeProblem();
  if (problem) throw new ModelPackError(`${dir}: ${problem}`);
  return { dir, manifest, processor };
}

/** Streams the file: external weight files of a real model are gigabytes. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (cause) {
    throw new ModelPackError(`cannot read ${path}: ${(cause as Error).message}`);
  }
  return hash.digest("hex");
}

function checkSegments(dir: string, m: ModelPackManifest): void {
  let next = 0;
  for (const s of m.graphs.segments) {
    if (s.first_layer !== next || s.end_layer <= s.first_layer)
      throw new ModelPackError(`${dir}: decoder segments are not consecutive`);
    next = s.end_layer;
  }
  if (next !== m.decoder.layers)
    throw new ModelPackError(`${dir}: decoder segments do not cover ${m.decoder.layers} layers`);
  const bounds = m.graphs.segments.slice(1).map((s) => s.first_layer);
  if (JSON.stringify(bounds) !== JSON.stringify(m.split_layers))
    throw new ModelPackError(`${dir}: split_layers do not match the segments`);
}

function checkDecoder(dir: string, m: ModelPackManifest): void {
  const d = m.decoder;
  if (d.heads % d.kv_heads !== 0) throw new ModelPackError(`${dir}: decoder.heads must be a multiple of kv_heads`);
  if (m.graphs.decode_steps && d.rope.positions !== "1d")
    throw new ModelPackError(`${dir}: graphs.decode_steps needs 1-D positions (M-RoPE decode positions are not built)`);
  if (d.rope.positions === "mrope") {
    const sum = (d.rope.mrope_section ?? []).reduce((a, b) => a + b, 0);
    if (sum * 2 !== d.head_dim)
      throw new ModelPackError(`${dir}: decoder.rope.mrope_section must sum to head_dim / 2 (${d.head_dim / 2})`);
  }
}

/**
 * Refuses a small/large pair whose visual tokens would not mean the same image regions: the image recipe (tile
 * size, tiling rule, resampling, normalisation, patch size, pixel shuffle, grid) must be identical. The
 * tokenizers may differ (the reference code loads one per model).
 */
export function checkPair(small: ModelPackManifest, large: ModelPackManifest): void {
  if (small.role !== "small" || large.role !== "large") {
    throw new ModelPackError(`pack roles are ${small.role}/${large.role}, expected small/large`);
  }
  const a = small.image;
  const b = large.image;
  const differing = (Object.keys(a) as (keyof typeof a)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  if (differing.length > 0) {
    const first = differing[0] as keyof typeof a;
    throw new ModelPackError(
      `model packs ${small.name} and ${large.name} cut images differently (${differing.join(", ")}): ` +
        `${first} is ${JSON.stringify(a[first])} vs ${JSON.stringify(b[first])}`,
    );
  }
}

/** The manifest's facts the functions read; `processor`: the pack's own when read (readModelPack), else looked up. */
export function packInfo(m: ModelPackManifest, processor = imageProcessor(m.image)): PackInfo {
  return {
    name: m.name,
    version: m.version,
    family: m.family,
    image: m.image,
    processor,
    splitLayers: m.split_layers,
    layers: m.decoder.layers,
  };
}
