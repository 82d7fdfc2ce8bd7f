/**
 * `npm start`: the whole product on one machine, on CPU.
 *
 *   1. secrets: `.dev.vars` (ADMIN_SECRET, INTERNAL_SIGNING_SECRET), generated when missing;
 *   2. local D1: `wrangler d1 migrations apply DB --local`;
 *   3. the large function (STITCH_ROLE=large, STITCH_LARGE_PORT, default 8702) and the small one
 *      (STITCH_ROLE=small, STITCH_SMALL_PORT, default 8701), with the embedded model pair;
 *   4. the edge under `wrangler dev` (STITCH_EDGE_PORT, default 8787);
 *   5. waits for /readyz of both functions and the edge's /healthz, seeds a development API key
 *      (STITCH_DEV_API_KEY, else generated once and kept beside the local D1) through the admin API,
 *      and prints the ports, a curl and an `openai` client example that work as printed.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops all three. `startLocalStack()` is the same thing as a function,
 * for the end-to-end test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { encodePng, generateItem } from "../scene-generator/index.js";
import { API_KEY_PATTERN } from "../shared/index.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WRANGLER = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export interface LocalStackOptions {
  edgePort?: number;
  smallPort?: number;
  largePort?: number;
  /** wrangler dev's devtools port (default: any free port). */
  inspectorPort?: number;
  /** Registered as the development key; default STITCH_DEV_API_KEY, else generated once per `persistTo`. */
  devApiKey?: string;
  /** Local D1 and Durable Object state (default `.wrangler/state`). */
  persistTo?: string;
  /** Secrets file shared by the edge and the functions (default `.dev.vars`). */
  devVarsPath?: string;
  readyTimeoutMs?: number;
  /** Each line the three processes print, prefixed with their name. */
  log?: (line: string) => void;
}

export interface LocalStack {
  edgeUrl: string;
  smallUrl: string;
  largeUrl: string;
  apiKey: string;
  /** The example scene and the curl and client script that ask about it (written under .wrangler/stitch-example/). */
  examples: Examples;
  /** Resolves when a process of the stack exits on its own (not through stop()). */
  crashed: Promise<string>;
  stop(): Promise<void>;
}

const port = (value: string | undefined, fallback: number) => (value ? Number(value) : fallback);

export function defaultOptions(env: NodeJS.ProcessEnv = process.env): LocalStackOptions {
  return {
    edgePort: port(env.STITCH_EDGE_PORT, 8787),
    smallPort: port(env.STITCH_SMALL_PORT, 8701),
    largePort: port(env.STITCH_LARGE_PORT, 8702),
    devApiKey: env.STITCH_DEV_API_KEY || undefined,
  };
}

export async function startLocalStack(options: LocalStackOptions = defaultOptions()): Promise<LocalStack> {
  const edgePort = options.edgePort ?? 8787;
  const smallPort = options.smallPort ?? 8701;
  const largePort = options.largePort ?? 8702;
  const persistTo = path.resolve(ROOT, options.persistTo ?? ".wrangler/state");
  const devVarsPath = path.resolve(ROOT, options.devVarsPath ?? ".dev.vars");
  const log = options.log ?? ((line: string) => console.log(line));
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  for (const [name, p] of Object.entries({ STITCH_EDGE_PORT: edgePort, STITCH_SMALL_PORT: smallPort, STITCH_LARGE_PORT: largePort })) {
    if (!(await isFree(p))) throw new Error(`Port ${p} (${name}) is in use: stop what listens there or set ${name}`);
  }

  const secrets = ensureDevVars(devVarsPath);
  mkdirSync(persistTo, { recursive: true });
  const apiKey = options.devApiKey ?? devKeyFor(persistTo);
  if (!API_KEY_PATTERN.test(apiKey)) throw new Error("STITCH_DEV_API_KEY must look like sk-stitch-<16 hex>-<48 hex>");

  await run("migrations", process.execPath, [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], log);

  const processes = new Processes(log);
  const functionEnv = { STITCH_SIGNING_SECRET: secrets.INTERNAL_SIGNING_SECRET, HOST: "127.0.0.1" };
  const tsx = ["--import", "tsx", "gpu-worker/main.ts"];
  const largeUrl = `http://127.0.0.1:${largePort}`;
  const smallUrl = `http://127.0.0.1:${smallPort}`;
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  try {
    processes.start("large", process.execPath, tsx, { ...functionEnv, STITCH_ROLE: "large", PORT: String(largePort) });
    processes.start("small", process.execPath, tsx, { ...functionEnv, STITCH_ROLE: "small", PORT: String(smallPort), STITCH_LARGE_URL: largeUrl });
    // biome-ignore format: one wrangler flag per line pair reads best
    processes.start("edge", process.execPath, [
      WRANGLER, "dev", "--ip", "127.0.0.1", "--port", String(edgePort),
      "--inspector-port", String(options.inspectorPort ?? (await freePort())),
      "--persist-to", persistTo, "--env-file", devVarsPath,
      "--var", `SMALL_FUNCTION_URL:${smallUrl}`, "--show-interactive-dev-session=false",
    ], {});
    await Promise.all([
      processes.waitFor("large", `${largeUrl}/readyz`, readyTimeoutMs),
      processes.waitFor("small", `${smallUrl}/readyz`, readyTimeoutMs),
      processes.waitFor("edge", `${edgeUrl}/healthz`, readyTimeoutMs),
    ]);
    await seedKey(edgeUrl, secrets.ADMIN_SECRET, apiKey);
  } catch (err) {
    await processes.stopAll();
    throw err;
  }
  return { edgeUrl, smallUrl, largeUrl, apiKey, examples: writeExamples(edgeUrl, apiKey), crashed: processes.crashed, stop: () => processes.stopAll() };
}

/** The three child processes: output prefixed, each in its own process group so stop() ends what it spawned. */
class Processes {
  private readonly children = new Map<string, ChildProcess>();
  private readonly tails = new Map<string, string>();
  private stopping = false;
  private onCrash!: (message: string) => void;
  readonly crashed = new Promise<string>((resolve) => {
    this.onCrash = resolve;
  });

  constructor(private readonly log: (line: string) => void) {}

  start(name: string, command: string, args: string[], env: Record<string, string>): void {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env, FORCE_COLOR: "0" }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.children.set(name, child);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      this.tails.set(name, ((this.tails.get(name) ?? "") + text).slice(-3000));
      for (const line of text.split("\n")) if (line.trim()) this.log(`[${name}] ${line}`);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      if (!this.stopping) this.onCrash(`${name} exited (${signal ?? code}):\n${this.tails.get(name) ?? ""}`);
    });
  }

  async waitFor(name: string, url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const child = this.children.get(name);
    while (Date.now() < deadline) {
      if (child && child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it was ready:\n${this.tails.get(name) ?? ""}`);
      if (await fetch(url).then((r) => r.ok, () => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`${name} was not ready at ${url} within ${timeoutMs} ms:\n${this.tails.get(name) ?? ""}`);
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.children.values()].map(stopChild));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), signal); // the group this script created for the child
    } catch {}
  };
  signalGroup("SIGTERM");
  const timer = setTimeout(() => signalGroup("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function run(name: string, command: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, CI: "1", FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) {
        log(`[${name}] applied`);
        resolve();
      } else reject(new Error(`${name} failed (${code}):\n${output.slice(-3000)}`));
    });
  });
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
    writeFileSync(file, `${text}${text && !text.endsWith("\n") ? "\n" : ""}${text ? "" : "# Local secrets for wrangler dev and the GPU functions (git-ignored).\n"}${added}\n`);
  }
  return { ADMIN_SECRET: values.ADMIN_SECRET as string, INTERNAL_SIGNING_SECRET: values.INTERNAL_SIGNING_SECRET as string };
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
  if (res.status !== 201 && res.status !== 409) throw new Error(`Seeding the development key failed: ${res.status} ${await res.text()}`);
  const check = await fetch(`${edgeUrl}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
  if (!check.ok) throw new Error(`The development key does not work (${check.status} ${await check.text()}); was it revoked?`);
}

export interface Examples {
  dir: string;
  question: string;
  answer: string;
  curl: string;
  script: string;
}

/** A generated scene and the two ways to ask about it, written under .wrangler/stitch-example/. */
export function writeExamples(edgeUrl: string, apiKey: string): Examples {
  const dir = path.join(ROOT, ".wrangler", "stitch-example");
  mkdirSync(dir, { recursive: true });
  const item = generateItem(2026, 1);
  const qa = item.questions[0];
  if (!qa) throw new Error("the scene generator asked no question");
  const png = encodePng(item.rgb, item.side);
  const scenePath = path.join(dir, "scene.png");
  writeFileSync(scenePath, png);
  const body = {
    model: "stitch-sgl",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: qa.question },
          { type: "image_url", image_url: { url: `data:image/png;base64,${Buffer.from(png).toString("base64")}` } },
        ],
      },
    ],
  };
  writeFileSync(path.join(dir, "request.json"), `${JSON.stringify(body, null, 2)}\n`);
  const curl = `curl -s ${edgeUrl}/v1/chat/completions -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" -d '${JSON.stringify(body).replaceAll("'", "'\\''")}'`;
  const script = `import { readFileSync } from "node:fs";
import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${edgeUrl}/v1", apiKey: "${apiKey}" });
const image = readFileSync(${JSON.stringify(scenePath)}).toString("base64");
const reply = await client.chat.completions.create({
  model: "stitch-sgl",
  messages: [{ role: "user", content: [
    { type: "text", text: ${JSON.stringify(qa.question)} },
    { type: "image_url", image_url: { url: \`data:image/png;base64,\${image}\` } },
  ] }],
});
console.log(reply.choices[0].message.content, reply.stitch);
`;
  writeFileSync(path.join(dir, "openai-example.mjs"), script);
  return { dir, question: qa.question, answer: qa.answer, curl, script };
}

async function isFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(p, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
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
  small function   ${stack.smallUrl}
  large function   ${stack.largeUrl}
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
  stack.crashed.then((message) => shutdown(`A process stopped unexpectedly: ${message}`, 1));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
