/**
 * `npm run bench:fuzz -- [--requests 10000] [--seed 42] [--in-flight 8]`: generated bad requests (the same
 * generator as the edge's property tests, test/fuzz/bad-requests.ts) through the real local stack. Prints and
 * writes to bench/results/fuzz.md the answers by status and error code, the ledger rows before and after (there
 * must be no new one), the 5xx count (must be 0) and each process's memory before and after; exits 1 on any
 * 5xx, accepted bad request, missing error object, new ledger row or dead process.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import fc from "fast-check";
import { requestInit, sample, validRequest } from "../test/fuzz/bad-requests.js";
import { integer } from "../tools/cli-options.js";
import { persistToOf, settledLedgerRows, type TreeMemory, treeMemory } from "./fuzz-processes.js";
import { type FuzzResults, failures, renderFuzzMarkdown } from "./fuzz-report.js";
import { sendAll } from "./fuzz-send.js";
import { describeMachine } from "./machine.js";
import { createKey, type Stack, startStack, usage } from "./serve-stack.js";

const program = new Command()
  .name("bench:fuzz")
  .option("--requests <n>", "bad requests to send", integer(1), 10000)
  .option("--seed <n>", "the generator's seed", integer(0), 42)
  .option("--in-flight <n>", "requests in flight at once", integer(1), 8)
  .option("--control <n>", "valid requests sent first, which must be answered and billed once each", integer(0), 5)
  .option("--out <dir>", "results folder", "bench/results")
  .parse();
const opts = program.opts<{ requests: number; seed: number; inFlight: number; control: number; out: string }>();
const { requests, seed, inFlight } = opts;
const controlCount = opts.control;

const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const log = (m: string) => console.error(`bench:fuzz: ${m} (${elapsed().toFixed(0)} s)`);
const machine = describeMachine();
const command = `npm run bench:fuzz -- --requests ${requests} --seed ${seed} --in-flight ${inFlight}`;

const memory = (stack: Stack): TreeMemory[] => {
  const pids = stack.pids();
  return (["edge", "small", "large"] as const).map((name) => treeMemory(name, pids[name]));
};

log("starting the local stack");
const stackLines: string[] = [];
const stack = await startStack((line) => {
  stackLines.push(line);
  if (stackLines.length > 200) stackLines.shift();
});
const stackStartS = elapsed();
let crash: string | null = null;
void stack.crashed.then((message) => {
  crash = message;
  console.error(`bench:fuzz: a process of the stack died: ${message}`);
});

let results: FuzzResults;
try {
  const edgePid = stack.pids().edge;
  if (edgePid === undefined) throw new Error("the stack has no edge process");
  const persistTo = persistToOf(edgePid);
  const controlKey = await createKey(stack, `bench-fuzz-control-${Date.now()}`);
  const fuzzKey = await createKey(stack, `bench-fuzz-${Date.now()}`);

  // Valid requests first: each must be answered and add one row, so that "no new row" below means something.
  const rowsBefore = await settledLedgerRows(persistTo);
  let answered = 0;
  for (const req of fc.sample(validRequest(), { seed, numRuns: controlCount })) {
    const res = await fetch(`${stack.edgeUrl}${req.path}`, requestInit(req, controlKey.key));
    const text = await res.text();
    if (res.status === 200) answered++;
    else log(`control request refused: ${res.status} ${text.slice(0, 300)}`);
  }
  const rowsAfterControl = await settledLedgerRows(persistTo);
  log(`control: ${answered} of ${controlCount} answered; ledger ${rowsBefore} → ${rowsAfterControl} rows`);

  const memoryBefore = memory(stack);
  log(`sending ${requests} bad requests, ${inFlight} in flight`);
  const during: FuzzResults["memory"]["during"] = [];
  const tally = await sendAll(stack.edgeUrl, fuzzKey.key, sample(requests, seed), {
    inFlight,
    progress: (n) => {
      log(`${n} sent`);
      during.push({ sent: n, totalsKiB: Object.fromEntries(memory(stack).map((m) => [m.name, m.totalKiB])) });
    },
  });
  log(`sent ${tally.sent} in ${tally.durationS.toFixed(0)} s; waiting for the usage queue to settle`);
  const rowsAfter = await settledLedgerRows(persistTo);
  const memoryAfter = memory(stack);
  const fuzzUsage = await usage(stack, fuzzKey.key);
  results = {
    command,
    machine,
    seed,
    inFlight,
    stackStartS,
    totalS: elapsed(),
    control: { sent: controlCount, answered, rowsBefore, rowsAfter: rowsAfterControl },
    ledger: { before: rowsAfterControl, after: rowsAfter, fuzzKeyRequests: fuzzUsage.totals.requests },
    memory: { before: memoryBefore, during, after: memoryAfter },
    tally,
    crash,
  };
} catch (err) {
  console.error(
    `bench:fuzz failed: ${err instanceof Error ? err.stack : err}\nThe stack's last lines:\n${stackLines.join("\n")}`,
  );
  await stack.stop();
  process.exit(1);
}
await stack.stop();

const markdown = renderFuzzMarkdown(results);
await mkdir(opts.out, { recursive: true });
await writeFile(join(opts.out, "fuzz.md"), markdown);
console.log(markdown);
const failed = failures(results);
if (failed.length > 0) {
  console.error(`bench:fuzz: FAIL: ${failed.join("; ")}`);
  process.exit(1);
}
log(`PASS; wrote ${join(opts.out, "fuzz.md")}`);
