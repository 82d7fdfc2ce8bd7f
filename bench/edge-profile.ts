/**
 * `npm run bench:edge-profile`: where the edge's CPU goes on cache hits. Starts the local stack as bench:serve does,
 * primes a few answers, then records a V8 CPU profile of the edge's Worker isolate (through `wrangler dev`'s
 * inspector) while the same cache hits as bench:serve's are sent, and writes the functions with the most samples
 * to bench/results/edge-profile.md. The isolate's profile only: workerd's own C++ (its I/O, the dev proxy) shows as
 * "(program)" or not at all.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Command } from "commander";
import { integer } from "../tools/cli-options.js";
import { connectInspector } from "../tools/start-local-stack.inspector.js";
import { type CpuProfile, type FunctionShare, summarizeProfile } from "./edge-profile-summary.js";
import { describeMachine, machineLine } from "./machine.js";
import { fixed, markdownTable } from "./markdown.js";
import { runLoad } from "./serve-load.js";
import { type BenchItem, benchItem, edgeRequest } from "./serve-requests.js";
import { createKey, startStack } from "./serve-stack.js";

const opts = new Command()
  .name("bench:edge-profile")
  .option("--requests <n>", "cache hits sent while profiling", integer(1), 3000)
  .option("--connections <n>", "concurrent connections", integer(1), 4)
  .option("--interval-us <n>", "sampling interval (µs)", integer(10), 100)
  .option("--top <n>", "functions listed", integer(1), 30)
  .option("--out <file>", "Markdown results", "bench/results/edge-profile.md")
  .parse()
  .opts<{ requests: number; connections: number; intervalUs: number; top: number; out: string }>();

/** The inspector port `wrangler dev` was started with, read from its command line. */
function edgeInspectorPort(pid: number | undefined): number {
  const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  const port = Number(args[args.indexOf("--inspector-port") + 1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error("the edge's wrangler dev has no --inspector-port");
  return port;
}

/** A DevTools client: one command at a time, its answer by id. */
class Inspector {
  private last = 0;
  private readonly waiting = new Map<number, (message: { result?: unknown; error?: unknown }) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
      if (message.id !== undefined) this.waiting.get(message.id)?.(message);
    };
  }
  static async open(port: number) {
    return new Inspector(await connectInspector(port));
  }
  call(method: string, params: object = {}): Promise<unknown> {
    const id = ++this.last;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (m) =>
        m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result),
      );
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  close() {
    this.ws.close();
  }
}

const machine = describeMachine();
const stack = await startStack(() => {});
try {
  const { key } = await createKey(stack, `bench-edge-profile-${Date.now()}`);
  const items = Array.from({ length: 25 }, (_, i) => benchItem(9000, i));
  let c = 0;
  const next = () =>
    edgeRequest(items[c++ % items.length] as BenchItem, "sgl", { apiKey: key, bypassCache: false, maxTokens: 4 });
  for (const _ of items) {
    const r = next(); // primes the 25 answers
    await (
      await fetch(`${stack.edgeUrl}${r.path}`, { method: r.method, headers: r.headers, body: r.body })
    ).arrayBuffer();
  }
  const load = (amount: number) =>
    runLoad({
      name: "cache hits",
      baseUrl: stack.edgeUrl,
      connections: opts.connections,
      amount,
      maxSeconds: 120,
      next,
    });
  await load(400); // warm-up: JIT, the isolate's memo
  const inspector = await Inspector.open(edgeInspectorPort(stack.pids().edge));
  await inspector.call("Profiler.enable");
  await inspector.call("Profiler.setSamplingInterval", { interval: opts.intervalUs });
  await inspector.call("Profiler.start");
  const run = await load(opts.requests);
  const { profile } = (await inspector.call("Profiler.stop")) as { profile: CpuProfile };
  inspector.close();
  const summary = summarizeProfile(profile, opts.top);
  const command = `npm run bench:edge-profile -- --requests ${opts.requests} --connections ${opts.connections} --interval-us ${opts.intervalUs}`;
  const table = (rows: FunctionShare[]) =>
    markdownTable(
      ["function (bundle line)", "share of samples"],
      rows.map((r) => [`\`${r.name}\``, `${fixed(r.share * 100, 1)}%`]),
    );
  const md = `# Where the edge's CPU goes on a cache hit

\`${command}\` — the local stack as bench:serve starts it; ${run.responses} cache hits (statuses ${JSON.stringify(run.statuses)}, p50 ${fixed(run.okLatencyMs.p50)} ms) on ${opts.connections} connections while V8 sampled the edge's Worker isolate every ${opts.intervalUs} µs (${summary.samples} samples). Function names and lines are those of wrangler's bundle of the edge. Only the isolate is profiled: workerd's own C++ work (sockets, the dev proxy, SQLite's engine below its JS calls) shows as \`(program)\` or is not sampled.
${machineLine(machine)}

## Inclusive (the function and everything under it)

${table(summary.inclusive)}

## Self

${table(summary.self)}
`;
  await mkdir(dirname(opts.out), { recursive: true });
  await writeFile(opts.out, md);
  await writeFile(
    opts.out.replace(/\.md$/, ".json"),
    `${JSON.stringify({ command, machine, run, summary }, null, 2)}\n`,
  );
  console.error(`bench:edge-profile: wrote ${opts.out}`);
} finally {
  await stack.stop();
}
