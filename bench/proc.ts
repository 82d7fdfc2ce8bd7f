/** What the benchmarks read of Linux's /proc about a process: one reader for all of them. */
import { readdirSync, readFileSync } from "node:fs";

/** A /proc file's text, or null when it cannot be read (the process has gone, or it is not ours to read). */
export function readProc(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** The resident set in KiB (`VmRSS` of /proc/<pid>/status); null when the process is gone. */
export function rssKiB(pid: number): number | null {
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(readProc(`/proc/${pid}/status`) ?? "")?.[1];
  return kib === undefined ? null : Number(kib);
}

/** The process's command line, argument by argument. */
export const cmdline = (pid: number): string[] => (readProc(`/proc/${pid}/cmdline`) ?? "").split("\0");

/** Every live pid with the fields of its /proc/<pid>/stat after the parenthesised name (state, ppid, pgrp, …). */
export function statOfAll(): Map<number, string[]> {
  const all = new Map<number, string[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProc(`/proc/${entry}/stat`);
    if (stat) all.set(Number(entry), stat.slice(stat.lastIndexOf(")") + 2).split(" "));
  }
  return all;
}
