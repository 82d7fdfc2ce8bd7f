import { describe, expect, it } from "vitest";
import { parseLlamaBench, parseMtmdLog, TimingsMissing } from "./peers-llama-timings.js";

// llama-mtmd-cli (llama-cpp-python 0.3.36's llama.cpp) with --perf -lv 4 on the tiny Qwen2.5-VL (Q8_0), 448×448
// image, -n 4 --ignore-eos, under GNU time: the lines the parser reads, as printed.
const MTMD_LOG = `0.00.747.174 I clip_model_loader: has vision encoder
0.01.526.923 I encoding mtmd batch, n_chunks = 1 (done = 1, total = 3)
0.02.251.563 I mtmd batch encoding done in 725 ms
0.02.251.613 I decoding image batch 1/1, n_tokens_batch = 256
0.02.405.434 I image decoded (batch 1/1) in 153 ms
0.02.503.586 I llama_perf_context_print:        load time =     635.86 ms
0.02.503.600 I llama_perf_context_print: prompt eval time =    1440.90 ms /   290 tokens (    4.97 ms per token,   201.26 tokens per second)
0.02.503.606 I llama_perf_context_print:        eval time =      13.68 ms /     3 runs   (    4.56 ms per token,   219.35 tokens per second)
0.02.503.612 I llama_perf_context_print:       total time =    1756.78 ms /   293 tokens
0.02.503.618 I llama_perf_context_print:    graphs reused =          3
peak_rss_kib 76648
`;

describe("parseMtmdLog", () => {
  it("reads vision, the image's decode, the prompt's tokens, decode per token and peak RSS", () => {
    const run = parseMtmdLog(MTMD_LOG);
    expect(run.visionMs).toBe(725);
    expect(run.imageDecodeMs).toBe(153);
    expect(run.promptTokens).toBe(290);
    expect(run.decodeRuns).toBe(3);
    expect(run.decodeMsPerToken).toBeCloseTo(13.68 / 3, 9);
    expect(run.peakRssKiB).toBe(76648);
  });

  it("adds up the slices of older builds' per-slice lines", () => {
    const older = MTMD_LOG.replace(
      "mtmd batch encoding done in 725 ms",
      "image slice encoded in 300 ms\nimage slice encoded in 125.5 ms",
    );
    expect(parseMtmdLog(older).visionMs).toBe(425.5);
  });

  it("refuses a log without the perf lines (run without --perf) instead of reading zeros", () => {
    const withoutPerf = MTMD_LOG.split("\n")
      .filter((l) => !l.includes("llama_perf_context_print"))
      .join("\n");
    expect(() => parseMtmdLog(withoutPerf)).toThrow(TimingsMissing);
  });

  it("refuses a log where no image was encoded", () => {
    expect(() => parseMtmdLog(MTMD_LOG.replace("mtmd batch encoding done in 725 ms", ""))).toThrow(/not encoded/);
  });
});

// llama-bench -o json -p 290 -n 7 (fields trimmed to those the parser reads, values as printed).
const BENCH_JSON = JSON.stringify([
  { n_prompt: 290, n_gen: 0, n_depth: 0, avg_ns: 41039308, samples_ns: [41039308] },
  { n_prompt: 0, n_gen: 7, n_depth: 0, avg_ns: 9100000, samples_ns: [9100000] },
]);

describe("parseLlamaBench", () => {
  it("takes the prefill from pp and decode per token from tg", () => {
    const b = parseLlamaBench(BENCH_JSON, 290, 7);
    expect(b.prefillMs).toBeCloseTo(41.039308, 9);
    expect(b.decodeMsPerToken).toBeCloseTo(1.3, 9);
  });

  it("refuses output without the runs at the request's prompt length", () => {
    expect(() => parseLlamaBench(BENCH_JSON, 300, 7)).toThrow(TimingsMissing);
    expect(() => parseLlamaBench(BENCH_JSON, 290, 8)).toThrow(TimingsMissing);
    expect(() => parseLlamaBench("| model | size |", 290, 7)).toThrow(/JSON/);
    expect(() => parseLlamaBench(JSON.stringify([{ n_prompt: 290, n_gen: 0 }]), 290, 7)).toThrow(/JSON/);
  });
});
