/**
 * A V8 CPU profile (DevTools `Profiler.stop`'s result) summed per function: the share of samples spent in each
 * function itself (self) and under it (inclusive), functions named by name, file and line.
 */

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
}

export interface FunctionShare {
  name: string;
  /** Share of all samples, 0-1. */
  share: number;
}

export interface ProfileSummary {
  samples: number;
  self: FunctionShare[];
  inclusive: FunctionShare[];
}

const nameOf = (f: CallFrame) =>
  `${f.functionName || "(anonymous)"} ${f.url.split("/").at(-1) ?? ""}:${f.lineNumber + 1}`;

export function summarizeProfile(profile: CpuProfile, top: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, n] of hits) {
    const leaf = byId.get(id);
    if (!leaf) continue;
    add(self, nameOf(leaf.callFrame), n);
    // A recursive function counts once per sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = nameOf((byId.get(at) as { callFrame: CallFrame }).callFrame);
      if (!seen.has(name)) add(inclusive, name, n);
      seen.add(name);
    }
  }
  const total = profile.samples.length;
  const ranked = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, n]) => ({ name, share: total > 0 ? n / total : 0 }));
  return { samples: total, self: ranked(self), inclusive: ranked(inclusive) };
}

function add(m: Map<string, number>, key: string, n: number) {
  m.set(key, (m.get(key) ?? 0) + n);
}
