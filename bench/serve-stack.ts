/**
 * The real local stack for `bench:serve` (edge under `wrangler dev` with local
 * D1, the small and the large function), started by the project's own
 * `startLocalStack()` from tools/start-local-stack.ts, and the few edge calls
 * the benchmark needs besides the load itself: API keys and usage.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import type { UsageReportSchema } from "../shared/index.js";
import { disableNetworkEvents } from "../tools/start-local-stack.inspector.js";
import { startLocalStack } from "../tools/start-local-stack.js";
import { freePort, Processes } from "../tools/start-local-stack.processes.js";

const WRANGLER = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface Stack {
  edgeUrl: string;
  smallUrl: string;
  adminSecret: string;
  signingSecret: string;
  /** The empty Worker (bench/empty-worker/) under its own `wrangler dev`, when asked for: the latency floor. */
  emptyUrl?: string;
  /** Resolves with a message when a process of the stack dies during the benchmark. */
  crashed: Promise<string>;
  /** The pids of the stack's processes now (a restarted function gets a new one): the edge is `wrangler dev`'s. */
  pids(): { edge?: number; small?: number; large?: number; empty?: number };
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Also start the empty Worker of bench/empty-worker/ under `wrangler dev` with the edge's flags. */
  emptyWorker?: boolean;
  /** Extra environment of each GPU function (another pair of packs, threads, deadlines). */
  functionEnv?: { small?: Record<string, string>; large?: Record<string, string> };
  /** How long the processes may take to be ready (real-size packs load for minutes). */
  readyTimeoutMs?: number;
  /** Extra `[vars]` of the edge (bench:shadow's calibration settings). */
  edgeVars?: Record<string, string>;
}

/**
 * Starts a stack of its own: free ports (a developer's `npm start` may hold the
 * default ones), secrets the benchmark knows, and a fresh local D1 in a temporary
 * folder, removed at stop, so that no earlier ledger row is counted.
 */
export async function startStack(log: (line: string) => void, options: StackOptions = {}): Promise<Stack> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(log, options);
    } catch (err) {
      // Ports are picked free before the processes bind them (wrangler picks more
      // of its own), and another process can take one in between: seen once, on a
      // machine still releasing the previous run's sockets. Anything else is real.
      if (attempt === 3 || !String(err).includes("Address already in use")) throw err;
      log(`bench:serve: a port was taken before the stack could bind it; starting again (${attempt} of 2)`);
    }
  }
}

async function startStackOnce(log: (line: string) => void, options: StackOptions): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), "stitch-bench-serve-"));
  const adminSecret = randomBytes(24).toString("hex");
  const signingSecret = randomBytes(24).toString("hex");
  const devVarsPath = join(dir, "dev.vars");
  await writeFile(devVarsPath, `ADMIN_SECRET=${adminSecret}\nINTERNAL_SIGNING_SECRET=${signingSecret}\n`, {
    mode: 0o600,
  });
  try {
    const stack = await startLocalStack({
      edgePort: await freePort(),
      smallPort: await freePort(),
      largePort: await freePort(),
      persistTo: join(dir, "state"),
      devVarsPath,
      log,
      ...(options.functionEnv && { functionEnv: options.functionEnv }),
      ...(options.readyTimeoutMs && { readyTimeoutMs: options.readyTimeoutMs }),
      ...(options.edgeVars && { edgeVars: options.edgeVars }),
    });
    let empty: DevWorker | undefined;
    try {
      if (options.emptyWorker) empty = await startEmptyWorker(join(dir, "empty-state"), log);
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return {
      edgeUrl: stack.edgeUrl,
      smallUrl: stack.smallUrl,
      adminSecret,
      signingSecret,
      ...(empty && { emptyUrl: empty.url }),
      crashed: empty ? Promise.race([stack.crashed, empty.processes.crashed]) : stack.crashed,
      pids: () => ({
        edge: stack.processes.pid("edge"),
        small: stack.processes.pid("small"),
        large: stack.processes.pid("large"),
        empty: empty?.pid(),
      }),
      stop: async () => {
        await Promise.all([stack.stop(), empty?.processes.stopAll()]);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A Worker of the benchmarks' own under `wrangler dev`, as `startDevWorker` starts it. */
export interface DevWorker {
  url: string;
  port: number;
  processes: Processes;
  /** The pid of its `wrangler dev` now. */
  pid(): number | undefined;
}

export interface DevWorkerOptions {
  name: string;
  /** Its wrangler.toml, relative to the repository. */
  config: string;
  persistTo: string;
  log: (line: string) => void;
  /** `--var NAME:value` pairs. */
  vars?: Record<string, string>;
  /** Turn off the runtime's DevTools Network events, as the launcher does for the edge (default true). */
  quietNetwork?: boolean;
}

/**
 * A Worker under `wrangler dev` with the flags tools/start-local-stack.ts gives the edge (same wrangler, so the same
 * workerd and the same proxy in front of it), on a free port, with state in the benchmark's folder.
 */
export async function startDevWorker(options: DevWorkerOptions): Promise<DevWorker> {
  const { name, log } = options;
  const port = await freePort();
  const inspectorPort = await freePort();
  const processes = new Processes(ROOT, log);
  const vars = Object.entries(options.vars ?? {}).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  // biome-ignore format: one wrangler flag per line pair reads best
  processes.start(name, process.execPath, [
    WRANGLER, "dev", "--config", options.config, "--ip", "127.0.0.1", "--port", String(port),
    "--inspector-port", String(inspectorPort), "--persist-to", options.persistTo, "--show-interactive-dev-session=false",
    ...vars,
  ], {});
  const url = `http://127.0.0.1:${port}`;
  try {
    await processes.waitFor(name, url, 120_000);
    if (options.quietNetwork ?? true) {
      const quiet = await disableNetworkEvents(inspectorPort);
      if (!quiet.ok) throw new Error(`${name}'s inspector: ${quiet.reason}`);
    }
  } catch (err) {
    await processes.stopAll();
    throw err;
  }
  return { url, port, processes, pid: () => processes.pid(name) };
}

/**
 * The empty Worker, configured as the launcher configures the edge (it makes no subrequests, so it has no Network
 * events to keep either way).
 */
function startEmptyWorker(persistTo: string, log: (line: string) => void): Promise<DevWorker> {
  return startDevWorker({ name: "empty", config: "bench/empty-worker/wrangler.toml", persistTo, log });
}

async function json<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** A fresh key per scenario: its own cache scope and its own ledger, with the rate limit out of the way. */
/** A key with a rate limit no bench reaches; `fields` adds to the admin API's create body (e.g. `shadow: false`). */
export async function createKey(
  stack: Stack,
  name: string,
  fields: Record<string, unknown> = {},
): Promise<{ id: string; key: string }> {
  const res = await fetch(`${stack.edgeUrl}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.adminSecret}`, "content-type": "application/json" },
    body: JSON.stringify({ name, rate_limit_per_minute: 100_000, ...fields }),
  });
  return json(res, "creating a bench key");
}

export type UsageReport = z.infer<typeof UsageReportSchema>;

export async function usage(stack: Stack, apiKey: string): Promise<UsageReport> {
  return json(
    await fetch(`${stack.edgeUrl}/v1/usage`, { headers: { authorization: `Bearer ${apiKey}` } }),
    "reading usage",
  );
}

/**
 * The key's usage once the ledger has settled: a usage record waits up to USAGE_FLUSH_DELAY_MS (1 s) in its key's
 * outbox, then up to max_batch_timeout (2 s) in the queue before the consumer writes it (wrangler.toml), so the
 * totals must stay unchanged for well over the sum.
 */
export async function settledUsage(
  stack: Stack,
  apiKey: string,
  timeoutMs = 30_000,
  quietMs = 6_000,
): Promise<UsageReport> {
  let prev = await usage(stack, apiKey);
  let changedAt = Date.now();
  const until = changedAt + timeoutMs;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    const next = await usage(stack, apiKey);
    if (next.totals.requests !== prev.totals.requests) changedAt = Date.now();
    else if (Date.now() - changedAt >= quietMs) return next;
    prev = next;
  }
  return prev;
}
