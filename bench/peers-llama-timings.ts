/**
 * What llama.cpp says about its own runs, pure (text in, numbers out; a missing line is refused, never read as 0):
 *
 * - `llama-mtmd-cli --perf -lv 4` (the request itself): the vision tower's time, timed around the encode call
 *   ("mtmd batch encoding done in N ms"; older builds: "image slice encoded in N ms", one per slice), the image
 *   tokens' pass through the decoder ("image decoded (batch i/n) in N ms"), the prompt's token count and the
 *   per-token decode time (`llama_perf_context_print`), and GNU time's peak RSS (`-f 'peak_rss_kib %M'`).
 *   Its "prompt eval time" is NOT used: llama.cpp adds a queued decode's time when it next synchronises, and in
 *   mtmd-cli that happens after the image has been encoded (and, with warm-up, after the warm-up), so the figure
 *   holds the vision tower and more (llama-context.cpp, `synchronize`; seen here: 1815 ms for 1419 ms of vision).
 * - `llama-bench -o json -p P -n S` (the decoder alone, llama.cpp's own benchmark): the prefill of the request's P
 *   prompt tokens, and S generated tokens (its "tg" test, from an empty cache: at these lengths the KV cache is a
 *   few MB beside GBs of weights read per token).
 */

import { z } from "zod";

export class TimingsMissing extends Error {}

const NUMBER = String.raw`([0-9]+(?:\.[0-9]+)?)`;

export interface MtmdRun {
  /** The vision tower (mmproj) on the image. */
  visionMs: number;
  /** The image's tokens through the decoder (part of the prefill). */
  imageDecodeMs: number;
  /** Text and image tokens of the prompt. */
  promptTokens: number;
  /** One generated token through the decoder (the CLI's own perf line: eval time ÷ runs). */
  decodeMsPerToken: number;
  decodeRuns: number;
  peakRssKiB?: number;
}

function sumOf(log: string, pattern: string): number[] {
  return [...log.matchAll(new RegExp(pattern, "g"))].map((m) => Number(m[1]));
}

export function parseMtmdLog(log: string): MtmdRun {
  const encoded = [
    ...sumOf(log, `mtmd batch encoding done in ${NUMBER} ms`),
    ...sumOf(log, `image slice encoded in ${NUMBER} ms`),
  ];
  if (encoded.length === 0) throw new TimingsMissing("no image encoding line: the image was not encoded");
  const decoded = sumOf(log, String.raw`image decoded \(batch \d+/\d+\) in ${NUMBER} ms`);
  if (decoded.length === 0) throw new TimingsMissing("no 'image decoded' line: the image never reached the decoder");
  const prompt = /llama_perf_context_print:\s+prompt eval time =\s+[0-9.]+ ms \/\s+(\d+) tokens/.exec(log);
  if (!prompt) throw new TimingsMissing("no 'prompt eval time' line (run with --perf -lv 4)");
  const evals = new RegExp(String.raw`llama_perf_context_print:\s+eval time =\s+${NUMBER} ms /\s+(\d+) runs`).exec(log);
  if (!evals) throw new TimingsMissing("no 'eval time' line (run with --perf -lv 4)");
  const runs = Number(evals[2]);
  const rss = /^peak_rss_kib (\d+)$/m.exec(log);
  return {
    visionMs: encoded.reduce((a, b) => a + b, 0),
    imageDecodeMs: decoded.reduce((a, b) => a + b, 0),
    promptTokens: Number(prompt[1]),
    decodeMsPerToken: runs > 0 ? Number(evals[1]) / runs : Number.NaN,
    decodeRuns: runs,
    ...(rss && { peakRssKiB: Number(rss[1]) }),
  };
}

export interface DecoderBench {
  /** The prefill of the prompt's P tokens. */
  prefillMs: number;
  /** One generated token: the tg test's time ÷ S. */
  decodeMsPerToken: number;
}

/** The fields of llama-bench's JSON records that are read (it prints many more). */
const BenchRecords = z.array(
  z.object({ n_prompt: z.number().int(), n_gen: z.number().int(), avg_ns: z.number().positive() }),
);

export function parseLlamaBench(json: string, promptTokens: number, steps: number): DecoderBench {
  let records: z.infer<typeof BenchRecords>;
  try {
    records = BenchRecords.parse(JSON.parse(json));
  } catch {
    throw new TimingsMissing("llama-bench did not print its JSON records (-o json)");
  }
  const pp = records.find((r) => r.n_prompt === promptTokens && r.n_gen === 0);
  const tg = records.find((r) => r.n_prompt === 0 && r.n_gen === steps);
  if (!pp || !tg) throw new TimingsMissing(`llama-bench has no pp${promptTokens} and tg${steps} runs`);
  return { prefillMs: pp.avg_ns / 1e6, decodeMsPerToken: tg.avg_ns / 1e6 / steps };
}
