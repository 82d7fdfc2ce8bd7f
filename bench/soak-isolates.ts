/**
 * `bench:soak`'s second view of the edge's memory: the V8 heap of each isolate in `wrangler dev`'s workerd runtime
 * after a full garbage collection, read through the runtime's own inspector (the one miniflare starts it with,
 * `--inspector-addr=localhost:0`, not wrangler's proxy in front of it).
 *
 * Why: that runtime holds far more than the Worker. Besides the Worker's isolate (`core:user:<name>`, which also
 * runs its Durable Object) it runs miniflare's simulators of D1, the queue, the Cache API and static assets, each in
 * isolates of their own, and their native state (SQLite, cache storage) in the same process. Its RSS grows with the
 * traffic it serves whatever the Worker does (an empty Worker's runtime grows too), so a slope of the whole process
 * cannot say whether this project's code keeps memory. The Worker's isolate's heap after a collection can: it is
 * what the deployed code's JavaScript retains (its objects; not the native backing stores of ArrayBuffers, which
 * `Runtime.getHeapUsage` reports apart and this reads no further).
 *
 * workerd's inspector does not implement `HeapProfiler.collectGarbage`; `HeapProfiler.takeHeapSnapshot` does run a
 * full collection first, so a snapshot is taken (its chunks are discarded) and `Runtime.getHeapUsage` read after it.
 * A snapshot stops the isolate for tens of milliseconds, which is why readings are tens of seconds apart.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { inspectorCall, openInspectorSocket } from "../tools/start-local-stack.inspector.js";
import type { Sample } from "./soak-memory.js";

/** Each step with the inspector: a reading that takes longer is dropped, not waited for. */
const STEP_TIMEOUT_MS = 20_000;

/** The Worker's own isolate among the runtime's: what the soak judges. */
export const workerIsolate = (workerName: string): string => `core:user:${workerName}`;

/**
 * Ports in LISTEN state (`0A`) from the text of /proc/net/tcp{,6}, of the sockets in `fds` (socket inode → the
 * process's fd number), in the order of their fds.
 */
export function listeningPorts(procNetTcp: string, fds: Map<string, number>): number[] {
  const found: { port: number; fd: number }[] = [];
  for (const line of procNetTcp.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [local, state, inode] = [fields[1], fields[3], fields[9]];
    const fd = inode === undefined ? undefined : fds.get(inode);
    if (state !== "0A" || !local || fd === undefined) continue;
    found.push({ port: Number.parseInt(local.split(":").at(-1) ?? "", 16), fd });
  }
  return found.sort((x, y) => x.fd - y.fd).map((f) => f.port);
}

/** The process's sockets: inode → fd number. */
function socketFds(pid: number): Map<string, number> {
  const fds = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) fds.set(m[1], Number(fd));
    } catch {
      // closed meanwhile
    }
  }
  return fds;
}

interface Target {
  id: string;
  webSocketDebuggerUrl: string;
}

/**
 * The runtime's inspector: the first socket it listens on (workerd binds the inspector before the sockets of its
 * config: the Worker's entry and its debug port), checked to answer `/json/list` with targets. Only that one is
 * asked: the others are the Worker's entry (a request there would reach the Worker itself) and workerd's debug
 * port (Cap'n Proto, not HTTP), and neither is the benchmark's to poke.
 */
export async function runtimeInspector(pid: number): Promise<string> {
  const text = ["/proc/net/tcp", "/proc/net/tcp6"].map((p) => readFileSync(p, "utf8")).join("\n");
  const [port] = listeningPorts(text, socketFds(pid));
  if (port === undefined) throw new Error(`workerd runtime ${pid}: listens on no port`);
  const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(5000) });
  const list = (await res.json()) as unknown;
  if (!Array.isArray(list) || !list.some((t) => typeof (t as Target).webSocketDebuggerUrl === "string"))
    throw new Error(`workerd runtime ${pid}: its first port, ${port}, is not its inspector`);
  return `127.0.0.1:${port}`;
}

async function heapAfterGc(target: Target): Promise<number> {
  const ws = await openInspectorSocket(target.webSocketDebuggerUrl, {}, STEP_TIMEOUT_MS);
  try {
    await inspectorCall(ws, 1, "HeapProfiler.takeHeapSnapshot", STEP_TIMEOUT_MS);
    const usage = await inspectorCall(ws, 2, "Runtime.getHeapUsage", STEP_TIMEOUT_MS);
    return Number(usage.result?.usedSize) / 2 ** 20;
  } finally {
    ws.close();
  }
}

/** Every isolate's V8 heap (MiB used) after a full collection; an isolate that does not answer is left out. */
export async function isolateHeaps(inspector: string): Promise<Record<string, number>> {
  const res = await fetch(`http://${inspector}/json/list`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  const heaps: Record<string, number> = {};
  for (const target of (await res.json()) as Target[]) {
    try {
      heaps[target.id] = await heapAfterGc(target);
    } catch {
      // left out of this reading
    }
  }
  return heaps;
}

/** Reads every isolate's heap after GC every `everyMs`, one reading at a time, until stopped. */
export class IsolateHeapSampler {
  readonly series = new Map<string, Sample[]>();
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private wake: () => void = () => {};

  constructor(
    private readonly runtimePid: number,
    private readonly inspector: string,
    private readonly startedAt: number,
  ) {}

  private async reading(): Promise<void> {
    const t = (performance.now() - this.startedAt) / 1000;
    const heaps = await isolateHeaps(this.inspector).catch(() => ({}));
    for (const [id, mib] of Object.entries(heaps)) {
      const list = this.series.get(id) ?? [];
      list.push({ t, pid: this.runtimePid, rssMiB: mib });
      this.series.set(id, list);
    }
  }

  start(everyMs: number): void {
    const loop = async () => {
      while (!this.stopped) {
        const next = performance.now() + everyMs;
        await this.reading();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, next - performance.now()));
          this.wake = () => resolve(clearTimeout(timer));
        });
      }
    };
    this.running = loop();
  }

  /** Stops after one last reading; once stopped, does nothing. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    await this.running;
    await this.reading();
  }
}
