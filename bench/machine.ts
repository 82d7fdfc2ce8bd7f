/** Where a benchmark ran: absolute times only mean something next to this. */
import { cpus, loadavg, platform, release, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memory_gib: number;
  /** 1-minute load average when the run started: a busy machine slows absolute times, not ratios. */
  load_at_start: number;
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    load_at_start: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}, ${m.memory_gib} GiB; load ${m.load_at_start} at start`;
}
