/**
 * llama.cpp's side of bench:peers, as its users run it on a CPU:
 * - the request: `llama-mtmd-cli` with the text GGUF and the `--mmproj`, the image and the question through the
 *   model's own chat template (`--jinja`), greedy (`--temp 0`), `-n tokens --ignore-eos`, `threads` threads, under
 *   GNU time for the process's peak RSS: the vision tower's time, the prompt's length, the answer;
 * - the decoder at that prompt length: `llama-bench` (pp P and tg S), llama.cpp's own benchmark, because the
 *   CLI's prompt timer also counts the vision tower (peers-llama-timings.ts says why).
 */
import { spawn } from "node:child_process";
import {
  type DecoderBench,
  type MtmdRun,
  parseLlamaBench,
  parseMtmdLog,
  TimingsMissing,
} from "./peers-llama-timings.js";

export interface LlamaRequest {
  bin: (tool: string) => string;
  model: string;
  mmproj: string;
  image: string;
  question: string;
  /** Decode steps after the prefill (the CLI generates steps + 1 tokens: the first comes from the prefill). */
  steps: number;
  threads: number;
  /** Caps the image's tokens to Stitch's count where their resize rules differ (the tiny packs' max_pixels). */
  imageMaxTokens?: number;
}

async function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string; wallMs: number }> {
  const start = performance.now();
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d;
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d;
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s])),
  );
  if (code !== 0) {
    const tail = stderr.split("\n").slice(-12).join("\n");
    throw new Error(`${args[2] ?? command} ended with ${signal ?? `exit ${code}`}:\n${tail}`);
  }
  return { stdout, stderr, wallMs: performance.now() - start };
}

export function mtmdArgs(r: LlamaRequest): string[] {
  return [
    ...["-m", r.model, "--mmproj", r.mmproj, "--image", r.image, "-p", r.question, "--jinja"],
    ...["--temp", "0", "--seed", "1", "-n", String(r.steps + 1), "--ignore-eos"],
    ...["-t", String(r.threads), "-tb", String(r.threads), "-c", "8192", "--perf", "-lv", "4"],
    ...(r.imageMaxTokens ? ["--image-max-tokens", String(r.imageMaxTokens)] : []),
  ];
}

export interface LlamaRequestRun extends MtmdRun {
  /** The CLI process from start to exit, loading both models included. */
  wallMs: number;
  answer: string;
}

/**
 * The request; run again (at most twice more) when its log lacks a line the parser needs: llama.cpp's common log
 * writes from a thread, and at exit its last lines (the perf ones) are sometimes dropped, all or some (seen here in
 * 1 of 6 runs of the same command). A log that lacks them three times running is refused.
 */
export async function runMtmd(r: LlamaRequest): Promise<LlamaRequestRun> {
  for (let attempt = 1; ; attempt++) {
    const out = await run("/usr/bin/time", ["-f", "peak_rss_kib %M", r.bin("llama-mtmd-cli"), ...mtmdArgs(r)]);
    let parsed: MtmdRun;
    try {
      parsed = parseMtmdLog(out.stderr);
    } catch (e) {
      if (e instanceof TimingsMissing && attempt < 3) continue;
      throw e;
    }
    if (parsed.decodeRuns !== r.steps) {
      throw new Error(`llama-mtmd-cli counted ${parsed.decodeRuns} decode runs, not ${r.steps}`);
    }
    return { ...parsed, wallMs: out.wallMs, answer: out.stdout.trim() };
  }
}

/** The decoder alone: a prefill of `promptTokens`, and `steps` generated tokens. */
export async function runDecoderBench(r: LlamaRequest, promptTokens: number): Promise<DecoderBench> {
  const p = String(promptTokens);
  const out = await run(r.bin("llama-bench"), [
    ...["-m", r.model, "-p", p, "-n", String(r.steps), "-r", "1", "-t", String(r.threads)],
    ...["-o", "json"],
  ]);
  return parseLlamaBench(out.stdout, promptTokens, r.steps);
}
