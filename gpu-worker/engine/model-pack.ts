/** Reads a model pack from disk: manifest schema, file checksums, and the pair rule. */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ModelPackManifest, ModelPackManifestSchema } from "../../shared/index.js";
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

/** Parses and checks a pack's manifest and verifies the sha256 of every file it lists. */
export async function readModelPack(dir: string): Promise<ModelPack> {
  const manifest = await readPackManifest(dir);
  const listed = [
    manifest.graphs.vision,
    manifest.graphs.embed,
    manifest.tokenizer,
    ...manifest.graphs.segments.map((s) => s.file),
  ];
  for (const file of listed) {
    const expected = manifest.checksums[file];
    if (!expected) throw new ModelPackError(`${dir}: no checksum for ${file}`);
    const actual = createHash("sha256")
      .update(await readFile(join(dir, file)))
      .digest("hex");
    if (actual !== expected) throw new ModelPackError(`${dir}: checksum mismatch for ${file}`);
  }
  checkSegments(dir, manifest);
  return { dir, manifest };
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

/** Refuses a small/large pair that does not share family and visual grid (token i must mean the same region). */
export function checkPair(small: ModelPackManifest, large: ModelPackManifest): void {
  if (small.role !== "small" || large.role !== "large") {
    throw new ModelPackError(`pack roles are ${small.role}/${large.role}, expected small/large`);
  }
  if (small.family !== large.family) {
    throw new ModelPackError(`model packs are from different families: ${small.family} vs ${large.family}`);
  }
  const a = small.visual_grid;
  const b = large.visual_grid;
  if (a.rows !== b.rows || a.cols !== b.cols || a.patch_px !== b.patch_px) {
    throw new ModelPackError(
      `model packs cut images into different visual grids: ${a.rows}x${a.cols} vs ${b.rows}x${b.cols}`,
    );
  }
  if (small.image.width !== large.image.width || small.image.height !== large.image.height) {
    throw new ModelPackError("model packs expect different image sizes");
  }
}

export function packInfo(m: ModelPackManifest): PackInfo {
  return {
    name: m.name,
    version: m.version,
    family: m.family,
    imageSize: { width: m.image.width, height: m.image.height },
    visualTokens: m.visual_grid.rows * m.visual_grid.cols,
    splitLayers: m.split_layers,
    layers: m.decoder.layers,
  };
}
