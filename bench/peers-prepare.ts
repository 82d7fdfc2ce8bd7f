/**
 * bench:peers' prepare step: the same checkpoints for both sides. Each artefact is made only when missing (written
 * under a `.partial` name and renamed when whole), so an interrupted prepare resumes where it stopped:
 *   checkpoint  model-export/make_tiny_qwen25vl.py (the tiny pair) or make_real_size.py (3B, 7B), random weights;
 *   GGUF        the large model's only (llama.cpp runs it alone): llama.cpp's converter (F16 text model and F16
 *               --mmproj), then llama-quantize (Q8_0, Q4_K_M); the F16 text model is deleted once quantized unless
 *               float16 is compared (a 7B one is 15 GB);
 *   pack        Stitch's exporter, `python -m stitch_export --dtype float16|int8|int4`;
 *   images      the photograph resized (fit fill) to each request size, as PNG, so both sides read the same pixels.
 * Then each GGUF is run once through llama-bench (8 prompt tokens, 2 generated) before anything is timed: a build
 * with instructions this CPU does not run dies here with its signal named, not in the middle of a benchmark.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { type Artefacts, GGUF_TYPE, type Size, type WeightType } from "./peers-artefacts.js";

const root = join(dirname(new URL(import.meta.url).pathname), "..");
const exporterPython = join(root, ".venv-export", "bin", "python");
const log = (line: string) => console.error(`[peers:prepare] ${line}`);

/** Runs a command to completion with its output passed through; a failure names the command and how it ended. */
function must(command: string, args: string[], cwd = root): void {
  log(`$ ${command} ${args.join(" ")}`);
  const r = spawnSync(command, args, { cwd, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) {
    const how = r.signal
      ? `killed by ${r.signal}${r.signal === "SIGILL" ? " (an instruction this CPU does not run)" : ""}`
      : `exit ${r.status}`;
    throw new Error(`${command} failed: ${how}`);
  }
}

/** Makes `path` through `make(partialPath)` unless it exists; the partial name keeps a killed run from counting. */
function once(path: string, make: (partial: string) => void): void {
  if (existsSync(path)) return;
  const partial = `${path}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(dirname(path), { recursive: true });
  make(partial);
  renameSync(partial, path);
}

function checkpoint(a: Artefacts, size: Size): void {
  if (size.startsWith("tiny-")) {
    once(dirname(a.checkpoint(size)), (out) =>
      must(exporterPython, ["model-export/make_tiny_qwen25vl.py", "--out", out]),
    );
  } else {
    once(a.checkpoint(size), (out) =>
      must(exporterPython, ["model-export/make_real_size.py", "--model", `qwen2.5-vl-${size}`, "--out", out]),
    );
  }
}

function convert(a: Artefacts, size: Size, outfile: string, extra: string[]): void {
  must(a.llama.python, [
    "bench/peers_convert_gguf.py",
    "--llama-src",
    a.llama.src,
    "--pre",
    "qwen2",
    "--",
    a.checkpoint(size),
    "--outfile",
    outfile,
    "--outtype",
    "f16",
    ...extra,
  ]);
}

function ggufs(a: Artefacts, size: Size, types: WeightType[], threads: number): void {
  once(a.mmproj(size), (out) => convert(a, size, out, ["--mmproj"]));
  const f16 = a.gguf(size, "float16");
  const quantized = types.filter((t) => t !== "float16");
  if (quantized.some((t) => !existsSync(a.gguf(size, t)))) once(f16, (out) => convert(a, size, out, []));
  for (const t of quantized) {
    once(a.gguf(size, t), (out) => must(a.llama.bin("llama-quantize"), [f16, out, GGUF_TYPE[t], String(threads)]));
  }
  if (types.includes("float16")) once(f16, (out) => convert(a, size, out, []));
  else rmSync(f16, { force: true });
}

function pack(a: Artefacts, size: Size, role: "small" | "large", type: WeightType, o: PrepareOptions): void {
  const split = role === "large" ? ["--split-layers", String(o.pruneLayer)] : [];
  const cases = o.exportCases ? ["--cases", String(o.exportCases)] : [];
  const name = `qwen25vl-${size}-${role}`;
  once(a.pack(size, role, type), (out) =>
    must(
      exporterPython,
      [
        "-m",
        "stitch_export",
        "--checkpoint",
        a.checkpoint(size),
        "--role",
        role,
        ...split,
        "--dtype",
        type,
        "--out",
        out,
        "--name",
        name,
        "--source",
        `bench:peers random weights (${size})`,
        ...cases,
      ],
      join(root, "model-export"),
    ),
  );
}

/** The request images: the photograph at each size (fit fill), one PNG per size. */
export async function images(a: Artefacts, photo: string, sizes: { width: number; height: number }[]): Promise<void> {
  for (const { width, height } of sizes) {
    const path = a.image(`${width}x${height}`);
    if (existsSync(path)) continue;
    mkdirSync(dirname(path), { recursive: true });
    await sharp(photo).resize(width, height, { fit: "fill" }).removeAlpha().png().toFile(path);
  }
}

/** llama-bench on a few tokens: the GGUF loads and its kernels run on this CPU. */
function smokeTest(a: Artefacts, gguf: string, threads: number): void {
  must(a.llama.bin("llama-bench"), ["-m", gguf, "-p", "8", "-n", "2", "-r", "1", "-t", String(threads)]);
}

export interface PrepareOptions {
  sizes: Size[];
  types: WeightType[];
  pruneLayer: number;
  threads: number;
  /** Keep the checkpoints once converted and exported (a 7B one is 16 GB). */
  keepCheckpoints: boolean;
  /** Verify each export on the family's first N conformance cases only (undefined: all; hours at 7B on 2 cores). */
  exportCases?: number;
  /** Leave Stitch's packs out (llama.cpp's side only, e.g. while the exporter cannot export this size here). */
  skipPacks: boolean;
}

/** The large model is the last size; the one before it, if any, guides it (SGL). */
export function roles(sizes: Size[]): { large: Size; small?: Size } {
  const large = sizes.at(-1);
  if (!large) throw new Error("no model size given");
  const small = sizes.length > 1 ? sizes.at(-2) : undefined;
  return small ? { large, small } : { large };
}

export function prepare(a: Artefacts, o: PrepareOptions): void {
  const { large, small } = roles(o.sizes);
  // llama.cpp runs the large model alone, so only the large one gets GGUFs; Stitch's pair gets packs.
  const members: [Size, "small" | "large"][] = small
    ? [
        [small, "small"],
        [large, "large"],
      ]
    : [[large, "large"]];
  for (const [size, role] of members) {
    const llama = role === "large";
    const needsPacks = !o.skipPacks;
    const done = () =>
      (!llama || (existsSync(a.mmproj(size)) && o.types.every((t) => existsSync(a.gguf(size, t))))) &&
      (!needsPacks || o.types.every((t) => existsSync(a.pack(size, role, t))));
    if (done()) continue;
    checkpoint(a, size);
    if (llama) ggufs(a, size, o.types, o.threads);
    if (needsPacks) for (const t of o.types) pack(a, size, role, t, o);
    if (!o.keepCheckpoints && done() && !size.startsWith("tiny-")) rmSync(a.checkpoint(size), { recursive: true });
  }
  for (const t of o.types) smokeTest(a, a.gguf(large, t), o.threads);
}
