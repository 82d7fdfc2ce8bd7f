/**
 * `npm start`: the whole product on one machine, on CPU.
 *
 *   1. secrets: `.dev.vars` (ADMIN_SECRET, INTERNAL_SIGNING_SECRET), generated when missing;
 *   2. local D1: `wrangler d1 migrations apply DB --local`;
 *   3. the large function (STITCH_ROLE=large, STITCH_LARGE_PORT, default 8702) and the small one
 *      (STITCH_ROLE=small, STITCH_SMALL_PORT, default 8701), with the embedded model pair; each serves /metrics
 *      on a loopback port of its own (STITCH_SMALL_METRICS_PORT 9701, STITCH_LARGE_METRICS_PORT 9702);
 *   4. the edge under `wrangler dev` (STITCH_EDGE_PORT, default 8787);
 *   5. waits for /readyz of both functions and the edge's /healthz, turns off the DevTools Network events of
 *      wrangler dev's runtime (which its inspector proxy would keep for a debugger: start-local-stack.inspector.ts), seeds a development API key
 *      (STITCH_DEV_API_KEY, else generated once and kept beside the local D1) through the admin API,
 *      and prints the ports, a curl and an `openai` client example that work as printed.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops all three. A GPU function that dies is restarted (bounded, with backoff:
 * FUNCTION_RESTARTS); the edge dying, or a function dying too often, stops all three with a message naming the
 * process, its exit code or signal and its last log lines. `startLocalStack()` is the same thing as a function,
 * for the end-to-end test.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { API_KEY_PATTERN } from "../shared/index.js";
import { type Examples, writeExamples } from "./start-local-stack.examples.js";
import { disableNetworkEvents, isRuntimeReload, RELOAD_SETTLE_MS } from "./start-local-stack.inspector.js";
import {
  FUNCTION_RESTARTS,
  freePort,
  isFree,
  Processes,
  type RestartPolicy,
  run,
} from "./start-local-stack.processes.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WRANGLER = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export interface LocalStackOptions {
  edgePort?: number;
  smallPort?: number;
  largePort?: number;
  /** The functions' metrics listeners (loopback; default: any free port), never their work ports. */
  smallMetricsPort?: number;
  largeMetricsPort?: number;
  /** wrangler dev's devtools port (default: any free port). */
  inspectorPort?: number;
  /** Registered as the development key; default STITCH_DEV_API_KEY, else generated once per `persistTo`. */
  devApiKey?: string;
  /** Local D1 and Durable Object state (default `.wrangler/state`). */
  persistTo?: string;
  /** Secrets file shared by the edge and the functions (default `.dev.vars`). */
  devVarsPath?: string;
  /** Where the printed examples are written (default `.wrangler/stitch-example`). */
  examplesDir?: string;
  readyTimeoutMs?: number;
  /** Each line the three processes print, prefixed with their name. */
  log?: (line: string) => void;
  /** How a GPU function that dies is restarted (default FUNCTION_RESTARTS); the edge is never restarted. */
  restarts?: RestartPolicy;
  /** Extra environment of each GPU function, applied last (a fault test's shorter deadlines, or its own large URL). */
  functionEnv?: { small?: Record<string, string>; large?: Record<string, string> };
  /** Extra `[vars]` of the edge, e.g. SHADOW_TARGET (a benchmark's shadow calibration). */
  edgeVars?: Record<string, string>;
}

export interface LocalStack {
  edgeUrl: string;
  smallUrl: string;
  largeUrl: string;
  /** Where each function serves GET /metrics (its own loopback listener, not the work port). */
  smallMetricsUrl: string;
  largeMetricsUrl: string;
  /** wrangler dev's DevTools port; its runtime's Network events are off until a debugger turns them on (see start-local-stack.inspector.ts). */
  inspectorPort: number;
  apiKey: string;
  /** The example scene and the curl and client script that ask about it. */
  examples: Examples;
  /**
   * Resolves when the stack gives up: the edge exited on its own, or a GPU function died more often than its
   * restart policy allows (a single crash of a function is restarted, see RestartPolicy); names the process, its
   * exit code or signal and its last log lines.
   */
  crashed: Promise<string>;
  /** The live processes, e.g. for a fault test that kills one (`pid("small")`). */
  processes: Processes;
  stop(): Promise<void>;
}

const port = (value: string | undefined, fallback: number) => (value ? Number(value) : fallback);

export function defaultOptions(env: NodeJS.ProcessEnv = process.env): LocalStackOptions {
  return {
    edgePort: port(env.STITCH_EDGE_PORT, 8787),
    smallPort: port(env.STITCH_SMALL_PORT, 8701),
    largePort: port(env.STITCH_LARGE_PORT, 8702),
    smallMetricsPort: port(env.STITCH_SMALL_METRICS_PORT, 9701),
    largeMetricsPort: port(env.STITCH_LARGE_METRICS_PORT, 9702),
    devApiKey: env.STITCH_DEV_API_KEY || undefined,
  };
}

export async function startLocalStack(options: LocalStackOptions = defaultOptions()): Promise<LocalStack> {
  const edgePort = options.edgePort ?? 8787;
  const smallPort = options.smallPort ?? 8701;
  const largePort = options.largePort ?? 8702;
  const smallMetricsPort = options.smallMetricsPort ?? (await freePort());
  const largeMetricsPort = options.largeMetricsPort ?? (await freePort());
  const persistTo = path.resolve(ROOT, options.persistTo ?? ".wrangler/state");
  const devVarsPath = path.resolve(ROOT, options.devVarsPath ?? ".dev.vars");
  const log = options.log ?? ((line: string) => console.log(line));
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  for (const [name, p] of Object.entries({
    STITCH_EDGE_PORT: edgePort,
    STITCH_SMALL_PORT: smallPort,
    STITCH_LARGE_PORT: largePort,
    STITCH_SMALL_METRICS_PORT: smallMetricsPort,
    STITCH_LARGE_METRICS_PORT: largeMetricsPort,
  })) {
    if (!(await isFree(p))) throw new Error(`Port ${p} (${name}) is in use: stop what listens there or set ${name}`);
  }

  const secrets = ensureDevVars(devVarsPath);
  mkdirSync(persistTo, { recursive: true });
  const apiKey = options.devApiKey ?? devKeyFor(persistTo);
  if (!API_KEY_PATTERN.test(apiKey)) throw new Error("STITCH_DEV_API_KEY must look like sk-stitch-<16 hex>-<48 hex>");

  await run(
    ROOT,
    "migrations",
    process.execPath,
    [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo],
    log,
  );

  const inspectorPort = options.inspectorPort ?? (await freePort());
  const quietInspector = async () => {
    const outcome = await disableNetworkEvents(inspectorPort);
    if (!outcome.ok)
      log(
        `[stack] wrangler dev's DevTools Network events stay on (${outcome.reason}): its proxy keeps them until a debugger attaches`,
      );
  };
  const processes = new Processes(ROOT, (line) => {
    log(line);
    if (line.startsWith("[edge]") && isRuntimeReload(line)) setTimeout(() => void quietInspector(), RELOAD_SETTLE_MS);
  });
  const functionEnv = { STITCH_SIGNING_SECRET: secrets.INTERNAL_SIGNING_SECRET, HOST: "127.0.0.1" };
  const tsx = ["--import", "tsx", "gpu-worker/main.ts"];
  const largeUrl = `http://127.0.0.1:${largePort}`;
  const smallUrl = `http://127.0.0.1:${smallPort}`;
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const smallMetricsUrl = `http://127.0.0.1:${smallMetricsPort}`;
  const largeMetricsUrl = `http://127.0.0.1:${largeMetricsPort}`;
  try {
    const restarts = options.restarts ?? FUNCTION_RESTARTS;
    processes.start(
      "large",
      process.execPath,
      tsx,
      {
        ...functionEnv,
        STITCH_ROLE: "large",
        PORT: String(largePort),
        METRICS_PORT: String(largeMetricsPort),
        ...options.functionEnv?.large,
      },
      restarts,
    );
    processes.start(
      "small",
      process.execPath,
      tsx,
      {
        ...functionEnv,
        STITCH_ROLE: "small",
        PORT: String(smallPort),
        METRICS_PORT: String(smallMetricsPort),
        STITCH_LARGE_URL: largeUrl,
        // Shadow samples go to this stack's edge (gpu-worker/shadow/).
        STITCH_EDGE_URL: edgeUrl,
        ...options.functionEnv?.small,
      },
      restarts,
    );
    // biome-ignore format: one wrangler flag per line pair reads best
    processes.start("edge", process.execPath, [
      WRANGLER, "dev", "--ip", "127.0.0.1", "--port", String(edgePort),
      "--inspector-port", String(inspectorPort),
      "--persist-to", persistTo, "--env-file", devVarsPath,
      "--var", `SMALL_FUNCTION_URL:${smallUrl}`, "--show-interactive-dev-session=false",
      ...Object.entries(options.edgeVars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ], {});
    await Promise.all([
      processes.waitFor("large", `${largeUrl}/readyz`, readyTimeoutMs),
      processes.waitFor("small", `${smallUrl}/readyz`, readyTimeoutMs),
      processes.waitFor("edge", `${edgeUrl}/healthz`, readyTimeoutMs),
    ]);
    await quietInspector();
    await seedKey(edgeUrl, secrets.ADMIN_SECRET, apiKey);
  } catch (err) {
    await processes.stopAll();
    throw err;
  }
  return {
    edgeUrl,
    smallUrl,
    largeUrl,
    smallMetricsUrl,
    largeMetricsUrl,
    inspectorPort,
    apiKey,
    examples: writeExamples(path.resolve(ROOT, options.examplesDir ?? ".wrangler/stitch-example"), edgeUrl, apiKey),
    crashed: processes.crashed,
    processes,
    stop: () => processes.stopAll(),
  };
}

/** Reads `.dev.vars`, adding generated secrets for whatever is missing. */
function ensureDevVars(file: string): { ADMIN_SECRET: string; INTERNAL_SIGNING_SECRET: string } {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const values = Object.fromEntries(
    text
      .split("\n")
      .map((line) => /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*"?(.*?)"?\s*$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  ) as Record<string, string>;
  const missing = ["ADMIN_SECRET", "INTERNAL_SIGNING_SECRET"].filter((name) => !values[name]);
  if (missing.length > 0) {
    for (const name of missing) values[name] = randomBytes(24).toString("hex");
    const added = missing.map((name) => `${name}=${values[name]}`).join("\n");
    writeFileSync(
      file,
      `${text}${text && !text.endsWith("\n") ? "\n" : ""}${text ? "" : "# Local secrets for wrangler dev and the GPU functions (git-ignored).\n"}${added}\n`,
    );
  }
  return {
    ADMIN_SECRET: values.ADMIN_SECRET as string,
    INTERNAL_SIGNING_SECRET: values.INTERNAL_SIGNING_SECRET as string,
  };
}

/** The generated development key, kept beside the local database it is registered in. */
function devKeyFor(persistTo: string): string {
  const file = path.join(persistTo, "stitch-dev-api-key");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const key = `sk-stitch-${randomBytes(8).toString("hex")}-${randomBytes(24).toString("hex")}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

async function seedKey(edgeUrl: string, adminSecret: string, apiKey: string): Promise<void> {
  const res = await fetch(`${edgeUrl}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "local development", key: apiKey }),
  });
  if (res.status !== 201 && res.status !== 409)
    throw new Error(`Seeding the development key failed: ${res.status} ${await res.text()}`);
  const check = await fetch(`${edgeUrl}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
  if (!check.ok)
    throw new Error(`The development key does not work (${check.status} ${await check.text()}); was it revoked?`);
}

async function main(): Promise<void> {
  const options = defaultOptions();
  console.log("Starting the Stitch local stack (edge, small and large functions)…");
  const stack = await startLocalStack(options);
  const { examples } = stack;
  const relative = path.relative(process.cwd(), examples.dir) || ".";
  console.log(`
Ask about a generated scene (${relative}/scene.png; its right answer is "${examples.answer}"):

${examples.curl}

With the official openai client (saved as ${relative}/openai-example.mjs; run: node ${relative}/openai-example.mjs):

${examples.script}
Stitch local stack is ready:
  edge             ${stack.edgeUrl}   docs ${stack.edgeUrl}/docs   OpenAPI ${stack.edgeUrl}/openapi.json
  small function   ${stack.smallUrl}   metrics ${stack.smallMetricsUrl}/metrics
  large function   ${stack.largeUrl}   metrics ${stack.largeMetricsUrl}/metrics
  API key          ${stack.apiKey}
  admin secret     ADMIN_SECRET in .dev.vars
Ctrl-C stops all three.
`);
  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${why}: stopping the edge and both functions…`);
    await stack.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown("SIGINT", 0));
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));
  stack.crashed.then((message) => shutdown(`The stack cannot go on: ${message}\nStopping everything`, 1));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
