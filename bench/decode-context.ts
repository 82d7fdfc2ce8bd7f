/**
 * `npx tsx bench/decode-context.ts --packs DIR[,DIR…] [--images 448x448,896x672] [--steps 10] [--repeats 3]`: what a
 * decode step costs as the context grows, per pack: e.g. one checkpoint exported before and after an exporter change.
 * Each pack is loaded in turn (one resident at a time: a real-size model at 896×672 needs most of a 24 GiB machine),
 * then for each image the photo's request (the engine's own pieces, bench/engine-timing.ts) with exactly `--steps`
 * decode steps, `--repeats` times after one uncounted; the median ms per step. The first logits of each request are
 * compared with the first pack's for the same image: packs of the same weights must agree (largest |difference|).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Command } from "commander";
import { median } from "simple-statistics";
import { loadLargeEngine, loadSmallEngine, readPackManifest } from "../gpu-worker/engine/engine.js";
import { askAboutImage } from "../shared/index.js";
import { integer } from "../tools/cli-options.js";
import { photoAt, timeRequest } from "./engine-timing.js";
import { describeMachine } from "./machine.js";
import { markdownTable } from "./markdown.js";
import { releaseModel } from "./peers-stitch.js";

const o = new Command()
  .requiredOption("--packs <list>", "pack folders, comma-separated (each loaded in the role its manifest names)")
  .option("--images <list>", "request sizes, WxH", "448x448,896x672")
  .option(
    "--photo-dir <dir>",
    "where bench:peers wrote the photo at each size",
    `${process.env.HOME}/.cache/stitch/peers/images`,
  )
  .option("--steps <n>", "decode steps per request", integer(1, 256), 10)
  .option("--repeats <n>", "requests per pack and image (medians)", integer(1, 50), 3)
  .option("--threads <n>", "threads", integer(1, 256), 2)
  .option("--out <file>", "markdown results file")
  .parse()
  .opts<{
    packs: string;
    images: string;
    photoDir: string;
    steps: number;
    repeats: number;
    threads: number;
    out?: string;
  }>();

const machine = describeMachine();
const sizes = o.images.split(",").map((s) => s.split("x").map(Number) as [number, number]);
const rows: string[][] = [];
const reference = new Map<string, Float32Array>();
for (const dir of o.packs.split(",")) {
  const options = { packDir: dir, threads: o.threads };
  const { role } = await readPackManifest(dir);
  const engine = await (role === "large" ? loadLargeEngine(options) : loadSmallEngine(options));
  for (const [w, h] of sizes) {
    const image = `${w}x${h}`;
    const perStep: number[] = [];
    let prompt = 0;
    let diff = 0;
    for (let r = -1; r < o.repeats; r++) {
      const photo = await photoAt(`${o.photoDir}/${image}.png`, w, h, `${dir}-${r}-${Math.random()}`);
      const t = await timeRequest(engine.model, photo, askAboutImage("What is in this picture?"), o.steps);
      prompt = t.promptTokens;
      const first = reference.get(image) ?? t.firstLogits;
      reference.set(image, first);
      for (let i = 0; i < first.length; i++)
        diff = Math.max(diff, Math.abs((t.firstLogits[i] as number) - (first[i] as number)));
      if (r >= 0) perStep.push(median(t.stepMs));
      console.error(`${dir} ${image} ${r < 0 ? "warm-up" : `round ${r}`}: ${median(t.stepMs).toFixed(1)} ms a step`);
    }
    rows.push([
      dir,
      image,
      String(prompt),
      median(perStep).toFixed(1),
      perStep.map((v) => v.toFixed(1)).join(", "),
      diff.toPrecision(3),
    ]);
  }
  await releaseModel(engine.model);
}
const md = [
  "# Decode step against context length (bench/decode-context.ts)",
  "",
  `- Command: \`npx tsx bench/decode-context.ts ${process.argv.slice(2).join(" ")}\``,
  `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB; load ${machine.load_at_start} at start; ${o.threads} threads`,
  `- ${o.steps} decode steps per request, median of each request's steps, then the median of ${o.repeats} requests after one uncounted`,
  "",
  markdownTable(
    ["pack", "image", "prompt tokens", "ms a step", "requests", "first logits: max |Δ| to the first pack"],
    rows,
  ),
  "",
].join("\n");
console.log(md);
if (o.out) {
  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, md);
}
