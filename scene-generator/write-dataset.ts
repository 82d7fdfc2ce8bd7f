import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cellLabels } from "./cell-labels.js";
import { encodePng } from "./encode-png.js";
import { type GeneratorOptions, generateItem } from "./generate-item.js";
import { sceneWords } from "./vocabulary.js";

export interface DatasetRequest {
  seed: number;
  count: number;
  outDir: string;
  /** `png`: one PNG per image plus items.jsonl; `bin`: packed arrays for training. */
  format: "png" | "bin";
  options: GeneratorOptions;
}

/**
 * Writes a dataset. The `bin` format is what the offline trainer reads:
 * images.u8 (N × side × side × 3), cells.u8 (N × grid² × 3) and qa.jsonl
 * (one line per image: its questions), plus meta.json describing the shapes.
 */
export async function writeDataset(req: DatasetRequest): Promise<void> {
  await mkdir(req.outDir, { recursive: true });
  if (req.format === "png") await mkdir(join(req.outDir, "images"), { recursive: true });
  const images = req.format === "bin" ? createWriteStream(join(req.outDir, "images.u8")) : undefined;
  const cells = req.format === "bin" ? createWriteStream(join(req.outDir, "cells.u8")) : undefined;
  const lines = createWriteStream(join(req.outDir, req.format === "bin" ? "qa.jsonl" : "items.jsonl"));
  let side = 0;
  for (let i = 0; i < req.count; i++) {
    const item = generateItem(req.seed, i, req.options);
    side = item.side;
    if (images && cells) {
      await write(images, item.rgb);
      await write(cells, cellLabels(item.scene));
      await write(lines, `${JSON.stringify(item.questions)}\n`);
    } else {
      const file = `images/${item.id}.png`;
      await writeFile(join(req.outDir, file), encodePng(item.rgb, item.side));
      const record = { id: item.id, image: file, objects: item.scene.objects, questions: item.questions };
      await write(lines, `${JSON.stringify(record)}\n`);
    }
  }
  await Promise.all([images, cells, lines].map((s) => (s ? new Promise((r) => s.end(r)) : undefined)));
  const meta = {
    seed: req.seed,
    count: req.count,
    side,
    grid: req.options.grid,
    cellPx: req.options.cellPx,
    words: sceneWords(),
    options: req.options,
  };
  await writeFile(join(req.outDir, "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
}

function write(stream: NodeJS.WritableStream, chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(chunk)) resolve();
    else stream.once("drain", resolve);
  });
}
