/** Reads a model pack from disk: manifest schema, file checksums, and the pair rule. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ModelPackManifest, ModelPackManifestSchema } from "../../shared/index.js";
import { decodeSize } from "./image-processor/process-image.js";
import type { PackInfo } from "./types.js";

export class ModelPackError extends Error {
  override name = "ModelPackError";
}

export interface ModelPack {
  dir: string;
  manifest: ModelPackManifest;
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
  return [g.vision, g.embed, ...g.segments.map((s) => s.file), ...g.external_data, m.prompt.tokenizer];
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
  checkRecipe(dir, manifest);
  return { dir, manifest };
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

/** The numbers of the recipe must agree with each other, or token i would not mean what the pair assumes. */
function checkRecipe(dir: string, m: ModelPackManifest): void {
  checkDecoder(dir, m);
  const r = m.image;
  if (r.processor === "smart_resize") {
    if (r.min_pixels > r.max_pixels) throw new ModelPackError(`${dir}: image.min_pixels exceeds max_pixels`);
    return;
  }
  if (r.grid.rows * r.grid.cols !== r.tokens_per_tile)
    throw new ModelPackError(
      `${dir}: image.grid is ${r.grid.rows}x${r.grid.cols} but tokens_per_tile is ${r.tokens_per_tile}`,
    );
  if (r.min_tiles > r.max_tiles) throw new ModelPackError(`${dir}: image.min_tiles exceeds max_tiles`);
  if (r.processor === "fixed" && (r.max_tiles !== 1 || r.thumbnail))
    throw new ModelPackError(`${dir}: the fixed image processor makes exactly one tile and no thumbnail`);
}

function checkDecoder(dir: string, m: ModelPackManifest): void {
  const d = m.decoder;
  if (d.heads % d.kv_heads !== 0) throw new ModelPackError(`${dir}: decoder.heads must be a multiple of kv_heads`);
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

export function packInfo(m: ModelPackManifest): PackInfo {
  return {
    name: m.name,
    version: m.version,
    family: m.family,
    image: m.image,
    decodeSize: decodeSize(m.image),
    splitLayers: m.split_layers,
    layers: m.decoder.layers,
  };
}
