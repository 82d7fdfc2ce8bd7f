/**
 * Which onnxruntime execution provider actually ran each graph. onnxruntime-node has no API for a session's node
 * placement (`InferenceSession` exposes only names and metadata), but its profiler records the provider of every
 * node it runs (`args.provider` of each `cat: "Node"` event). Sessions are created with profiling on; the engine's
 * warm-up runs every graph once; `finish()` then ends profiling (no cost on real requests afterwards), reads the
 * profile files and counts nodes per provider, per graph.
 *
 * The rule: the first requested provider must run part of every graph that ran. A graph whose every node fell back
 * to the CPU while `cuda` was asked for fails the start-up (so /readyz never turns 200) instead of serving slowly
 * on the CPU unnoticed. Creating a session with a provider that cannot load already throws (onnxruntime-node does
 * not fall back when a provider's library is missing); `ExecutionProviderError` names the provider in that case.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Nodes run per provider (onnxruntime's names, e.g. `CUDAExecutionProvider`), for one graph. */
export interface GraphProviders {
  graph: string;
  /** False when the warm-up did not run this graph (nothing to tell). */
  ran: boolean;
  nodes: Record<string, number>;
}

export interface ProviderReport {
  /** As configured (STITCH_EXECUTION_PROVIDERS), in order of preference. */
  requested: string[];
  graphs: GraphProviders[];
}

export class ExecutionProviderError extends Error {
  override name = "ExecutionProviderError";
}

/** `cuda` ↔ `CUDAExecutionProvider`, `tensorrt` ↔ `TensorrtExecutionProvider`, `cpu` ↔ `CPUExecutionProvider`. */
export function isProvider(requested: string, ortName: string): boolean {
  return ortName.toLowerCase().replace(/executionprovider$/, "") === requested.toLowerCase();
}

interface ProfileEvent {
  cat?: string;
  args?: { provider?: string };
}

/** Nodes per provider in one onnxruntime profile (the JSON array the profiler writes). */
export function countNodes(events: ProfileEvent[]): Record<string, number> {
  const nodes: Record<string, number> = {};
  for (const e of events) {
    const provider = e.cat === "Node" ? e.args?.provider : undefined;
    if (provider) nodes[provider] = (nodes[provider] ?? 0) + 1;
  }
  return nodes;
}

/** Throws when the preferred provider ran none of a graph that ran; the message says what ran instead. */
export function checkProviders(report: ProviderReport, where: string): void {
  const preferred = report.requested[0] ?? "cpu";
  for (const g of report.graphs) {
    if (!g.ran || Object.keys(g.nodes).some((p) => isProvider(preferred, p))) continue;
    const ran = Object.entries(g.nodes)
      .map(([p, n]) => `${n} on ${p}`)
      .join(", ");
    throw new ExecutionProviderError(
      `${where}: graph ${g.graph} ran no node on the requested execution provider ${preferred} (${ran}); ` +
        "refusing to serve on a fallback provider",
    );
  }
}

/** Wraps a session-creation failure with the providers asked for, so the start-up log says what failed. */
export function providerLoadError(file: string, requested: string[], cause: unknown): Error {
  const message = cause instanceof Error ? cause.message : String(cause);
  if (requested.every((p) => p === "cpu")) return cause instanceof Error ? cause : new Error(message);
  return new ExecutionProviderError(
    `could not create a session for ${file} with execution providers ${requested.join(",")}: ${message.trim()} ` +
      "(no fallback to the CPU; see infra/README.md for the CUDA provider, or set STITCH_EXECUTION_PROVIDERS=cpu)",
    { cause },
  );
}

/** Profiling of one pack's sessions from creation to the end of the warm-up. */
export class ProviderProbe {
  private readonly dir = mkdtempSync(join(tmpdir(), "stitch-ort-profile-"));
  private readonly sessions: { graph: string; prefix: string; endProfiling: () => void }[] = [];
  private result: ProviderReport | null = null;

  constructor(readonly requested: string[]) {}

  /** Session options that turn profiling on for one graph, and the hook that tracks the session created with them. */
  profile(graph: string): {
    options: { enableProfiling: true; profileFilePrefix: string };
    track(session: { endProfiling(): void }): void;
  } {
    const prefix = join(this.dir, `${this.sessions.length}-${graph.replace(/[^A-Za-z0-9_.-]/g, "_")}`);
    const entry = { graph, prefix, endProfiling: () => {} };
    this.sessions.push(entry);
    return {
      options: { enableProfiling: true, profileFilePrefix: prefix },
      track: (session) => {
        entry.endProfiling = () => session.endProfiling();
      },
    };
  }

  /** Ends profiling (once), reads the counts and removes the files. Undefined until then. */
  get report(): ProviderReport | undefined {
    return this.result ?? undefined;
  }

  finish(): ProviderReport {
    if (this.result) return this.result;
    for (const s of this.sessions) s.endProfiling();
    const files = readdirSync(this.dir);
    const graphs = this.sessions.map(({ graph, prefix }) => {
      const base = prefix.slice(this.dir.length + 1);
      // onnxruntime appends `_<date>_<time>.json` to the prefix.
      const file = files.find((f) => f.startsWith(`${base}_`) && f.endsWith(".json"));
      const nodes = file ? countNodes(JSON.parse(readFileSync(join(this.dir, file), "utf8"))) : {};
      return { graph, ran: Object.keys(nodes).length > 0, nodes };
    });
    rmSync(this.dir, { recursive: true, force: true });
    this.result = { requested: this.requested, graphs };
    return this.result;
  }

  /** Removes the profile folder without reading it (sessions that failed to load). */
  discard(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
