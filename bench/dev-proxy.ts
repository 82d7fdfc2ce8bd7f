/**
 * `npm run bench:dev-proxy -- [--rounds 3] [--requests 15000]`: what `wrangler dev`'s workerd proxy (the process in
 * front of every local Worker, the edge's too) keeps per request, with no code of this project in the Worker.
 *
 * Three Workers, each under its own `wrangler dev` with the edge's flags, get the same closed-loop GETs, round by
 * round: the empty Worker (bench/empty-worker/), and the Worker making one subrequest per request
 * (bench/subrequest-worker/, to a local Node HTTP server started here) twice: once as wrangler leaves it, its
 * runtime's DevTools Network events on, and once with them off (tools/start-local-stack.inspector.ts, what the
 * launcher does for the edge). The proxy's RSS after each round is printed and written to bench/results/dev-proxy.md.
 *
 * This is the evidence for why the launcher turns the events off; it fails (exit status 1) when the subrequest
 * Worker's proxy, events off, grows by more than 1.5× the empty Worker's proxy from the first round to the last, or
 * when any request is answered other than 200.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { integer } from "../tools/cli-options.js";
import { describeMachine, machineLine } from "./machine.js";
import { markdownTable } from "./markdown.js";
import { runLoad } from "./serve-load.js";
import { type DevWorker, startDevWorker } from "./serve-stack.js";
import { edgeProcesses, rssMiB } from "./soak-memory.js";

const opts = new Command()
  .name("bench:dev-proxy")
  .option("--rounds <n>", "rounds of requests to each Worker", integer(1), 3)
  .option("--requests <n>", "requests per Worker per round", integer(1), 15000)
  .option("--connections <n>", "closed-loop connections", integer(1), 4)
  .option("--out <dir>", "results folder", "bench/results")
  .parse()
  .opts<{ rounds: number; requests: number; connections: number; out: string }>();
const { rounds, requests, connections } = opts;
/** The growth allowed to the quieted subrequest Worker's proxy, as a multiple of the empty Worker's. */
const MAX_GROWTH_RATIO = 1.5;

const started = performance.now();
const log = (m: string) =>
  console.error(`bench:dev-proxy: ${m} (${((performance.now() - started) / 1000).toFixed(0)} s)`);

interface Target {
  name: string;
  worker: DevWorker;
  rss: number[];
}

const upstream = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.end(JSON.stringify({ ok: true, pad: "y".repeat(500) })));
});
await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
const dir = await mkdtemp(join(tmpdir(), "stitch-bench-dev-proxy-"));
const targets: Target[] = [];
const quietLog = (line: string) => {
  if (/error/i.test(line) && !/ENOTFOUND/.test(line)) console.error(line);
};
let failures: string[] = [];
try {
  const specs = [
    { name: "empty Worker", config: "bench/empty-worker/wrangler.toml" },
    { name: "one subrequest, Network events on", config: "bench/subrequest-worker/wrangler.toml", quietNetwork: false },
    { name: "one subrequest, Network events off", config: "bench/subrequest-worker/wrangler.toml" },
  ];
  for (const [i, spec] of specs.entries()) {
    log(`starting ${spec.name}`);
    const worker = await startDevWorker({
      ...spec,
      name: `worker-${i}`,
      persistTo: join(dir, `state-${i}`),
      log: quietLog,
      vars: { UPSTREAM: upstreamUrl },
    });
    targets.push({ name: spec.name, worker, rss: [] });
  }
  const proxyRss = (t: Target) => {
    const proxy = edgeProcesses(t.worker.pid() ?? 0, t.worker.port)["edge: workerd proxy"];
    return (proxy !== undefined ? rssMiB(proxy) : null) ?? Number.NaN;
  };
  const send = async (t: Target, amount: number) => {
    const run = await runLoad({
      name: t.name,
      baseUrl: t.worker.url,
      connections,
      amount,
      maxSeconds: 900,
      next: () => ({ method: "GET", path: "/", headers: {} }),
    });
    const other = Object.entries(run.statuses).filter(([status]) => status !== "200");
    if (other.length > 0 || run.errors > 0 || run.timeouts > 0)
      failures.push(
        `${t.name}: statuses ${JSON.stringify(run.statuses)}, ${run.errors} errors, ${run.timeouts} timeouts`,
      );
  };
  for (const t of targets) await send(t, 2000);
  for (const t of targets) t.rss.push(proxyRss(t));
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) await send(t, requests);
    for (const t of targets) t.rss.push(proxyRss(t));
    log(`round ${round}: ${targets.map((t) => `${t.name} ${t.rss.at(-1)?.toFixed(0)} MiB`).join(", ")}`);
  }
} finally {
  await Promise.all(targets.map((t) => t.worker.processes.stopAll()));
  upstream.close();
  await rm(dir, { recursive: true, force: true });
}

// Growth from the first round on: the first round takes every proxy from its start to its working size.
const growth = (t: Target) => (t.rss.at(-1) ?? Number.NaN) - (t.rss[1] ?? Number.NaN);
const [empty, on, off] = targets as [Target, Target, Target];
const ratio = (t: Target) => growth(t) / Math.max(growth(empty), 1);
if (!(ratio(off) <= MAX_GROWTH_RATIO))
  failures.push(
    `the subrequest Worker's proxy, Network events off, grew ${growth(off).toFixed(0)} MiB from round 1 to ${rounds}: ${ratio(off).toFixed(2)}× the empty Worker's ${growth(empty).toFixed(0)} (at most ${MAX_GROWTH_RATIO}×)`,
  );
failures = [...new Set(failures)];

const machine = machineLine(describeMachine());
const header = [
  "Worker",
  "after warm-up",
  ...Array.from({ length: rounds }, (_, i) => `round ${i + 1}`),
  `round 1 → ${rounds}`,
  "÷ empty",
];
const rows = targets.map((t) => [
  t.name,
  ...t.rss.map((v) => v.toFixed(0)),
  `${growth(t) >= 0 ? "+" : ""}${growth(t).toFixed(0)}`,
  ratio(t).toFixed(2),
]);
const markdown = [
  "# bench:dev-proxy: what `wrangler dev`'s proxy keeps, with no code of this project",
  "",
  `\`npm run bench:dev-proxy -- --rounds ${rounds} --requests ${requests}\` on ${machine}: ${requests} closed-loop GETs per`,
  `Worker per round (${connections} connections), each Worker under its own \`wrangler dev\`. RSS of each one's workerd proxy, MiB:`,
  "",
  markdownTable(header, rows),
  "",
  "The Worker with one subrequest per request, Network events on, is what `wrangler dev` gives every Worker: its",
  "inspector proxy enables the runtime's DevTools Network domain and keeps every event (four per subrequest) until a",
  "debugger attaches. Off is what tools/start-local-stack.ts sets for the edge (tools/start-local-stack.inspector.ts).",
  "",
  ratio(on) > MAX_GROWTH_RATIO
    ? `With the events on, the proxy grew ${ratio(on).toFixed(2)}× as much as the empty Worker's; with them off, ${ratio(off).toFixed(2)}×.`
    : `With the events on, the proxy grew only ${ratio(on).toFixed(2)}× as much as the empty Worker's: this wrangler does not keep them (any more), and turning them off changes nothing.`,
  "",
  failures.length === 0 ? "**PASS**" : `**FAIL**\n\n${failures.map((f) => `- ${f}`).join("\n")}`,
  "",
].join("\n");
await mkdir(opts.out, { recursive: true });
await writeFile(join(opts.out, "dev-proxy.md"), markdown);
console.log(markdown);
process.exit(failures.length === 0 ? 0 : 1);
