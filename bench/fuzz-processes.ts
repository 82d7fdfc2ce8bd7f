/**
 * What `bench:fuzz` reads about the stack's processes, read-only from /proc and the local D1 file: the resident
 * memory of each process and its children (wrangler dev runs workerd as a child), the state folder the edge was
 * started with, and the number of ledger rows in its local D1.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { cmdline, rssKiB, statOfAll } from "./proc.js";

export interface ProcessMemory {
  pid: number;
  command: string;
  rssKiB: number;
}

export interface TreeMemory {
  name: string;
  /** The named process first, then its descendants. */
  processes: ProcessMemory[];
  totalKiB: number;
}

function command(pid: number): string {
  const args = cmdline(pid).filter(Boolean);
  const exe = (args[0] ?? "?").split("/").at(-1) ?? "?";
  const script = args
    .find((a, i) => i > 0 && /\.(m?js|ts)$|^dev$|workerd/.test(a))
    ?.split("/")
    .at(-1);
  return script ? `${exe} ${script}` : exe;
}

/** Every pid's parent, from /proc/<pid>/stat (the field after the parenthesised name). */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const [pid, fields] of statOfAll()) {
    const ppid = Number(fields[1]);
    if (Number.isFinite(ppid)) map.set(pid, ppid);
  }
  return map;
}

export function treeMemory(name: string, pid: number | undefined): TreeMemory {
  if (pid === undefined) return { name, processes: [], totalKiB: 0 };
  const ppid = parents();
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of ppid) if (parent === tree[i]) tree.push(child);
  }
  const processes = tree.map((p) => ({ pid: p, command: command(p), rssKiB: rssKiB(p) ?? 0 }));
  return { name, processes, totalKiB: processes.reduce((n, p) => n + p.rssKiB, 0) };
}

/** The `--persist-to` folder of the `wrangler dev` with this pid. */
export function persistToOf(pid: number): string {
  const args = cmdline(pid);
  const at = args.indexOf("--persist-to");
  const dir = at >= 0 ? args[at + 1] : undefined;
  if (!dir) throw new Error(`process ${pid} has no --persist-to`);
  return dir;
}

/** The local D1 databases under a persist folder (miniflare keeps each as one SQLite file). */
function d1Files(persistTo: string): string[] {
  const dir = join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sqlite"))
    .map((f) => join(dir, f));
}

/** All rows of every `ledger` table in the stack's local D1, read-only (the edge keeps writing meanwhile). */
export function ledgerRowCount(persistTo: string): number {
  let rows = 0;
  let found = false;
  for (const file of d1Files(persistTo)) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ledger'").get();
      if (!table) continue;
      found = true;
      rows += Number((db.prepare("SELECT COUNT(*) AS n FROM ledger").get() as { n: number }).n);
    } finally {
      db.close();
    }
  }
  if (!found) throw new Error(`no ledger table in the local D1 under ${persistTo}`);
  return rows;
}

/**
 * The ledger's row count once the usage queue has settled: its consumer writes batches up to 2 s after the last
 * request (wrangler.toml), so the count must stay the same for `quietMs`.
 */
export async function settledLedgerRows(persistTo: string, quietMs = 5000, timeoutMs = 60_000): Promise<number> {
  let last = ledgerRowCount(persistTo);
  let since = Date.now();
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = ledgerRowCount(persistTo);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
  }
  return last;
}
