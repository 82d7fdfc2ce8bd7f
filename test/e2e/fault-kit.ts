/**
 * Support for the fault tests (faults.test.ts): the real local stack (`startLocalStack`: wrangler dev edge with a
 * fresh local D1, the small and the large function as their own processes) on free ports with known secrets and
 * short deadlines; signals to its processes; a TCP relay between the small and the large function that can hold
 * the large function's stream right after its first token (so a kill or a client disconnect lands mid-stream every
 * time, not by luck of timing); an SSE reader; the admin and usage calls the assertions need.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodePng, generateItem } from "../../scene-generator/index.js";
import { type LocalStack, startLocalStack } from "../../tools/start-local-stack.js";
import { freePort } from "../../tools/start-local-stack.processes.js";

export interface FaultStackOptions {
  /** The edge's deadline for one call to the small function (SMALL_FUNCTION_TIMEOUT_MS). */
  smallTimeoutMs: number;
  /** The small function's deadline for one call to the large one (STITCH_LARGE_TIMEOUT_MS). */
  largeTimeoutMs: number;
  /** More of the edge's vars (wrangler dev's --env-file), e.g. a PRICE_TABLE. */
  edgeVars?: Record<string, string>;
}

export type FunctionName = "small" | "large";

export interface FaultStack {
  edgeUrl: string;
  smallUrl: string;
  largeUrl: string;
  adminSecret: string;
  /** wrangler dev's --persist-to folder: the local D1 and Durable Objects' files. */
  statePath: string;
  /** The relay the small function calls the large one through. */
  relay: LargeRelay;
  local: LocalStack;
  /** Every line the processes printed. */
  output: string[];
  /** Sends `signal` to a function's process now; returns its pid. */
  signal(name: FunctionName, signal: NodeJS.Signals): number;
  /** Waits until the launcher has restarted a killed function (a new pid) and the new process is ready. */
  restarted(name: FunctionName, oldPid: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Restart every death after 1 s (the window is shorter than a restart takes, so the backoff never grows). */
const RESTARTS = { maxRestarts: 5, windowMs: 1_000, backoffMs: 1_000 };

export async function startFaultStack(options: FaultStackOptions): Promise<FaultStack> {
  const dir = await mkdtemp(path.join(tmpdir(), "stitch-faults-"));
  const adminSecret = randomBytes(24).toString("hex");
  const devVarsPath = path.join(dir, "dev.vars");
  // wrangler dev's --env-file values override wrangler.toml's [vars]: the edge's deadline is shortened here.
  await writeFile(
    devVarsPath,
    [
      `ADMIN_SECRET=${adminSecret}`,
      `INTERNAL_SIGNING_SECRET=${randomBytes(24).toString("hex")}`,
      `SMALL_FUNCTION_TIMEOUT_MS=${options.smallTimeoutMs}`,
      ...Object.entries(options.edgeVars ?? {}).map(([name, value]) => `${name}=${value}`),
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const output: string[] = [];
  const statePath = path.join(dir, "state");
  const [edgePort, smallPort, largePort] = [await freePort(), await freePort(), await freePort()];
  const relay = await startLargeRelay(largePort);
  let local: LocalStack;
  try {
    local = await startLocalStack({
      edgePort,
      smallPort,
      largePort,
      persistTo: statePath,
      devVarsPath,
      examplesDir: path.join(dir, "examples"),
      log: (line) => output.push(line),
      restarts: RESTARTS,
      functionEnv: {
        small: {
          STITCH_LARGE_URL: relay.url,
          STITCH_LARGE_TIMEOUT_MS: String(options.largeTimeoutMs),
          // The relay counts escalations: no shadow escalation (README, "Shadow escalation") may add one at random.
          STITCH_SHADOW_RATE: "0",
        },
      },
    });
  } catch (err) {
    await relay.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const pidOf = (name: FunctionName) => {
    const pid = local.processes.pid(name);
    if (pid === undefined) throw new Error(`${name} has no process`);
    return pid;
  };
  const urls = { small: local.smallUrl, large: local.largeUrl };
  return {
    edgeUrl: local.edgeUrl,
    smallUrl: local.smallUrl,
    largeUrl: local.largeUrl,
    adminSecret,
    statePath,
    relay,
    local,
    output,
    signal(name, signal) {
      const pid = pidOf(name);
      process.kill(pid, signal);
      return pid;
    },
    async restarted(name, oldPid, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (local.processes.pid(name) === oldPid) {
        if (Date.now() > until) throw new Error(`${name} was not restarted:\n${local.processes.tail(name)}`);
        await sleep(100);
      }
      await local.processes.waitFor(name, `${urls[name]}/readyz`, Math.max(1, until - Date.now()));
    },
    async stop() {
      await local.stop();
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once nothing accepts connections on `url`'s port any more (a killed process's socket is gone). */
export async function portClosed(url: string, timeoutMs = 10_000): Promise<void> {
  const { hostname, port } = new URL(url);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(Number(port), hostname);
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(true));
    });
    if (refused) return;
    await sleep(20);
  }
  throw new Error(`${url} still accepts connections`);
}

// ── The relay between the small and the large function ─────────────────────────────────────────────────────────

/**
 * A TCP relay in front of the large function. It passes bytes both ways unchanged, counts the escalations it
 * carries, and, when armed, holds the next streamed answer right after its first `token` event: that event reaches
 * the small function (and so the client), the rest waits in the relay. `release()` lets it through; if the large
 * function dies meanwhile, the held bytes are dropped and the connection to the small function is closed, exactly
 * what the small function would see had the large one been killed after writing its first token.
 */
export interface LargeRelay {
  url: string;
  /** POST /v1/escalate requests that went through. */
  escalations(): number;
  /** Arms the hold; resolves once the next streamed answer's first token has gone through and the rest is held. */
  holdAfterFirstToken(): Promise<void>;
  /** Lets what was held through and passes everything again. */
  release(): void;
  close(): Promise<void>;
}

const TOKEN_EVENT = Buffer.from("event: token");
const FRAME_END = Buffer.from("\n\n");
const CRLF = Buffer.from("\r\n");

export async function startLargeRelay(largePort: number): Promise<LargeRelay> {
  let escalations = 0;
  let armed: (() => void) | null = null;
  const releases = new Set<() => void>();
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const upstream = net.connect(largePort, "127.0.0.1");
    sockets.add(client).add(upstream);
    // "pass": bytes go straight through; "scan": armed, looking for the first token; "held": buffering.
    let state: "pass" | "scan" | "held" = "pass";
    let buffer = Buffer.alloc(0);
    client.on("data", (bytes) => {
      if (bytes.includes("POST /v1/escalate")) escalations++;
      upstream.write(bytes);
    });
    upstream.on("data", (bytes) => {
      if (state === "pass" && armed) state = "scan";
      if (state === "pass") {
        client.write(bytes);
        return;
      }
      buffer = Buffer.concat([buffer, bytes]);
      if (state === "held") return;
      const token = buffer.indexOf(TOKEN_EVENT);
      if (token < 0) {
        if (buffer.includes("event: done") || buffer.includes("event: error")) passAll();
        return;
      }
      const frameEnd = buffer.indexOf(FRAME_END, token);
      if (frameEnd < 0) return;
      // The event and, when it is there already, the end of its HTTP chunk.
      let cut = frameEnd + FRAME_END.length;
      if (buffer.subarray(cut, cut + CRLF.length).equals(CRLF)) cut += CRLF.length;
      client.write(buffer.subarray(0, cut));
      buffer = buffer.subarray(cut);
      state = "held";
      const resolve = armed;
      armed = null;
      const release = () => {
        releases.delete(release);
        passAll();
      };
      releases.add(release);
      resolve?.();
    });
    function passAll() {
      state = "pass";
      if (buffer.length > 0) client.write(buffer);
      buffer = Buffer.alloc(0);
    }
    upstream.on("close", () => {
      // Held bytes die with the process that wrote them; anything else goes through before the end.
      if (state === "held") buffer = Buffer.alloc(0);
      else passAll();
      client.end();
      sockets.delete(upstream);
    });
    client.on("close", () => {
      upstream.destroy();
      sockets.delete(client);
    });
    upstream.on("error", () => {});
    client.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    escalations: () => escalations,
    holdAfterFirstToken: () =>
      new Promise<void>((resolve) => {
        armed = resolve;
      }),
    release() {
      armed = null;
      for (const release of [...releases]) release();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// ── Requests and what the edge reports ────────────────────────────────────────────────────────────────────────

/** A fresh key: its own ledger rows and cache scope, the rate limit out of the way. */
export async function createKey(stack: FaultStack, settings: Record<string, unknown> = {}) {
  const res = await fetch(`${stack.edgeUrl}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.adminSecret}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "faults", rate_limit_per_minute: 10_000, ...settings }),
  });
  if (res.status !== 201) throw new Error(`creating a key: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; key: string };
}

/** A chat request about generated scene `index` (its first question); the answer cache is bypassed. */
export function sceneBody(index: number, extra: Record<string, unknown> = {}) {
  const item = generateItem(7100, index);
  const qa = item.questions[0];
  if (!qa) throw new Error("scene without a question");
  const url = `data:image/png;base64,${Buffer.from(encodePng(item.rgb, item.side)).toString("base64")}`;
  const { stitch, ...rest } = extra as { stitch?: Record<string, unknown> };
  return {
    model: "stitch-sgp",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: qa.question },
          { type: "image_url", image_url: { url } },
        ],
      },
    ],
    ...rest,
    stitch: { cache: { bypass: true }, ...stitch },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  json: any;
}

export async function chat(
  stack: FaultStack,
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

/** A streamed response read event by event: each `data:` payload parsed (`"[DONE]"` as is). */
export class SseReader {
  private readonly decoder = new TextDecoder();
  private text = "";
  private ended = false;
  /** Every payload read so far. */
  readonly events: unknown[] = [];

  private constructor(
    readonly status: number,
    readonly headers: Headers,
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly controller: AbortController,
  ) {}

  static async open(stack: FaultStack, key: string, body: unknown, headers: Record<string, string> = {}) {
    const controller = new AbortController();
    const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify({ ...(body as object), stream: true }),
      signal: controller.signal,
    });
    if (!res.body) throw new Error("no body");
    return new SseReader(res.status, res.headers, res.body.getReader(), controller);
  }

  /** The next payload, or undefined at the end of the stream. */
  async next(): Promise<unknown> {
    for (;;) {
      const end = this.text.indexOf("\n\n");
      if (end >= 0) {
        const block = this.text.slice(0, end);
        this.text = this.text.slice(end + 2);
        if (!block.startsWith("data: ")) continue;
        const data = block.slice(6);
        const value = data === "[DONE]" ? data : JSON.parse(data);
        this.events.push(value);
        return value;
      }
      if (this.ended) return undefined;
      const { done, value } = await this.reader.read();
      if (done) this.ended = true;
      else this.text += this.decoder.decode(value, { stream: true });
    }
  }

  /** Reads until the first chunk with content; returns that content. */
  async firstContent(): Promise<string> {
    for (;;) {
      const event = (await this.next()) as Chunk | undefined;
      if (event === undefined) throw new Error(`the stream ended before any content: ${JSON.stringify(this.events)}`);
      const content = event.choices?.[0]?.delta?.content;
      if (content) return content;
    }
  }

  /** Reads to the end; returns every payload of the stream. */
  async rest(): Promise<unknown[]> {
    while ((await this.next()) !== undefined) {}
    return this.events;
  }

  /** The client leaves: the connection is closed under the stream. */
  abort(): void {
    this.controller.abort();
  }
}

export interface Chunk {
  id?: string;
  choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
  usage?: unknown;
  stitch?: { request_id: string; path: string; degraded: boolean; cost: number };
  error?: { code: string; type: string; message: string };
}

export const contentOf = (events: unknown[]) =>
  (events as Chunk[]).map((e) => (typeof e === "object" ? (e.choices?.[0]?.delta?.content ?? "") : "")).join("");

export interface LedgerRow {
  request_id: string;
  path: string;
  cost: number;
}

/** The key's ledger rows as the usage API lists them (the queue consumer writes them, so they trail the answers). */
export async function ledgerRows(stack: FaultStack, key: string): Promise<LedgerRow[]> {
  const res = await fetch(`${stack.edgeUrl}/v1/usage/requests?limit=100`, {
    headers: { authorization: `Bearer ${key}` },
  });
  if (!res.ok) throw new Error(`usage/requests: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: LedgerRow[] }).data;
}

/** The key's usage report: the ledger's totals, and the budget's spend from its Durable Object. */
export async function usage(stack: FaultStack, key: string) {
  const res = await fetch(`${stack.edgeUrl}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
  if (!res.ok) throw new Error(`usage: ${res.status} ${await res.text()}`);
  return (await res.json()) as { totals: { requests: number; cost: number }; budget: { spent_usd: number } };
}
