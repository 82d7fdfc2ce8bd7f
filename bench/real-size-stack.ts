/**
 * A real-size pair served by the whole local stack (the edge under `wrangler dev` with local D1, the small and the
 * large function over HTTP, started by the project's own scripts): the time until every process is ready, each
 * function's resident memory, and one request per model name (stitch-small, stitch-large, stitch-sgp,
 * stitch-sgl) answered end to end through the public API and billed.
 *
 *   npx tsx bench/real-size-stack.ts --small DIR --large DIR [--threads 2] [--max-tokens 8]
 *     [--out bench/results/real-size-stack.md]
 *
 * A benchmark command, not a test. With random weights the answers mean nothing.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command } from "commander";
import sharp from "sharp";
import { integer } from "../tools/cli-options.js";
import { treeMemory } from "./fuzz-processes.js";
import { describeMachine, machineLine } from "./machine.js";
import { markdownTable } from "./markdown.js";
import { createKey, type Stack, settledUsage, startStack } from "./serve-stack.js";

const MODELS = ["stitch-small", "stitch-large", "stitch-sgp", "stitch-sgl"] as const;

const opts = new Command()
  .requiredOption("--small <dir>", "the small pack")
  .requiredOption("--large <dir>", "the large pack")
  .option("--threads <n>", "intra-op threads per session", integer(1, 256), 2)
  .option("--max-tokens <n>", "tokens per answer", integer(1, 512), 8)
  .option("--photo <file>", "the image", "test/fixtures/photos/astronaut.jpg")
  .option("--timeout-ms <n>", "the functions' request deadline", integer(1000), 55_000)
  .option("--out <file>", "Markdown results (JSON beside it)", "bench/results/real-size-stack.md")
  .parse()
  .opts();

const log = (line: string) => console.error(`[real-size-stack] ${line}`);
const gib = (kib: number) => `${(kib / 2 ** 20).toFixed(2)} GiB`;

interface Answer {
  model: string;
  status: number;
  latencyMs: number;
  path?: string;
  answer?: string;
  usage?: unknown;
  stitch?: unknown;
  error?: unknown;
}

async function ask(stack: Stack, key: string, model: string, image: string): Promise<Answer> {
  const start = performance.now();
  const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      model,
      max_tokens: opts.maxTokens,
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: image } },
            { type: "text", text: "What is in this picture?" },
          ],
        },
      ],
    }),
  });
  const body = (await res.json()) as {
    error?: unknown;
    usage?: unknown;
    stitch?: { path?: string };
    choices?: { message?: { content?: string } }[];
  };
  const latencyMs = performance.now() - start;
  if (!res.ok) return { model, status: res.status, latencyMs, error: body.error };
  return {
    model,
    status: res.status,
    latencyMs,
    path: body.stitch?.path,
    answer: body.choices?.[0]?.message?.content,
    usage: body.usage,
    stitch: body.stitch,
  };
}

async function main() {
  const machine = describeMachine();
  const fnEnv = {
    STITCH_SMALL_PACK: resolve(opts.small),
    STITCH_LARGE_PACK: resolve(opts.large),
    STITCH_THREADS: String(opts.threads),
    STITCH_REQUEST_TIMEOUT_MS: String(opts.timeoutMs),
    STITCH_LARGE_TIMEOUT_MS: String(opts.timeoutMs),
  };
  const started = performance.now();
  const stack = await startStack(log, { functionEnv: { small: fnEnv, large: fnEnv }, readyTimeoutMs: 900_000 });
  const readyMs = performance.now() - started;
  try {
    const pids = stack.pids();
    const memory = () => ({
      small: treeMemory("small", pids.small).totalKiB,
      large: treeMemory("large", pids.large).totalKiB,
      edge: treeMemory("edge", pids.edge).totalKiB,
    });
    const atReady = memory();
    log(`ready in ${(readyMs / 1000).toFixed(0)} s; RSS small ${gib(atReady.small)}, large ${gib(atReady.large)}`);
    const { key } = await createKey(stack, "real-size");
    const answers: Answer[] = [];
    for (const [i, model] of MODELS.entries()) {
      // A slightly different image per request: the functions cache an image's visual embeddings, and each path
      // is to pay its own vision tower here.
      const png = await sharp(readFileSync(opts.photo))
        .resize(448, 448, { fit: "fill" })
        .modulate({ brightness: 1 + 0.01 * i })
        .png()
        .toBuffer();
      answers.push(await ask(stack, key, model, `data:image/png;base64,${png.toString("base64")}`));
      log(`${model}: ${answers.at(-1)?.status} in ${answers.at(-1)?.latencyMs.toFixed(0)} ms`);
    }
    const afterRequests = memory();
    const usage = await settledUsage(stack, key, 60_000);
    const results = {
      command: `npx tsx bench/real-size-stack.ts ${process.argv.slice(2).join(" ")}`,
      machine,
      date: new Date().toISOString(),
      readyMs,
      rssKiB: { atReady, afterRequests },
      answers,
      usage,
    };
    const md = [
      "# A real-size pair through the whole local stack (random weights, CPU)",
      "",
      `- Command: \`${results.command}\``,
      `- Machine: ${machineLine(machine)}; ${results.date}`,
      `- Packs: small ${opts.small}, large ${opts.large}; ${opts.threads} intra-op threads per session; ${opts.maxTokens} tokens per answer; one 448×448 image (${opts.photo}, its brightness nudged per request so that no vision cache serves it)`,
      `- Every process ready (edge, D1 migrations, both functions loading and warming their packs) ${(readyMs / 1000).toFixed(0)} s after the start`,
      "",
      markdownTable(
        ["process", "RSS when ready", "RSS after the requests"],
        (["small", "large", "edge"] as const).map((p) => [p, gib(atReady[p]), gib(afterRequests[p])]),
      ),
      "",
      `Both functions together after the requests: ${gib(afterRequests.small + afterRequests.large)}.`,
      "",
      markdownTable(
        ["model", "status", "latency ms", "answered by", "answer (random weights)"],
        answers.map((a) => [
          a.model,
          String(a.status),
          a.latencyMs.toFixed(0),
          a.path ?? JSON.stringify(a.error),
          JSON.stringify(a.answer ?? ""),
        ]),
      ),
      "",
      `Billed to the key once the ledger settled (\`/v1/usage\`): ${usage.totals.requests} requests, $${usage.totals.cost}; ${usage.by_path
        .map((p) => `${p.path}: ${p.requests}`)
        .join(", ")}.`,
      "",
    ].join("\n");
    console.log(md);
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, md);
    writeFileSync(opts.out.replace(/\.md$/, ".json"), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await stack.stop();
  }
}

await main();
