/** bench/results/fuzz.md: what `bench:fuzz` sent, what came back, the ledger and memory around it, the verdict. */

import type { TreeMemory } from "./fuzz-processes.js";
import type { Tally } from "./fuzz-send.js";
import { type Machine, machineLine } from "./machine.js";

export interface FuzzResults {
  command: string;
  machine: Machine;
  seed: number;
  inFlight: number;
  stackStartS: number;
  totalS: number;
  control: { sent: number; answered: number; rowsBefore: number; rowsAfter: number };
  ledger: { before: number; after: number; fuzzKeyRequests: number };
  /** `during`: each process tree's RSS after every 1000 requests, to tell growth that levels off from a leak. */
  memory: { before: TreeMemory[]; during: { sent: number; totalsKiB: Record<string, number> }[]; after: TreeMemory[] };
  tally: Tally;
  crash: string | null;
}

export function failures(r: FuzzResults): string[] {
  const out: string[] = [];
  if (r.tally.fiveXx > 0) out.push(`${r.tally.fiveXx} answers were 5xx`);
  if (r.ledger.after !== r.ledger.before) out.push(`${r.ledger.after - r.ledger.before} new ledger rows`);
  if (r.ledger.fuzzKeyRequests !== 0) out.push(`the fuzz key's usage shows ${r.ledger.fuzzKeyRequests} requests`);
  if (r.tally.twoXx > 0) out.push(`${r.tally.twoXx} bad requests were accepted (not a 4xx)`);
  if (r.tally.clientErrors > 0) out.push(`${r.tally.clientErrors} requests got no HTTP answer`);
  if (r.tally.badErrorObjects > 0) out.push(`${r.tally.badErrorObjects} refusals lacked a proper error object`);
  if (r.control.answered !== r.control.sent) out.push("a valid control request was not answered");
  if (r.control.rowsAfter - r.control.rowsBefore !== r.control.sent)
    out.push("the control requests were not billed once each");
  if (r.crash) out.push(`a process of the stack died: ${r.crash}`);
  return out;
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

function memoryTable(before: TreeMemory[], after: TreeMemory[]): string[] {
  const rows: string[] = [];
  const delta = (b: number, a: number | undefined) => (a === undefined ? "–" : `${a - b >= 0 ? "+" : ""}${mib(a - b)}`);
  for (const b of before) {
    const a = after.find((x) => x.name === b.name);
    rows.push(
      `| **${b.name}** (all) | | **${mib(b.totalKiB)}** | **${a ? mib(a.totalKiB) : "–"}** | **${delta(b.totalKiB, a?.totalKiB)}** |`,
    );
    if (b.processes.length < 2) continue;
    for (const p of b.processes) {
      const later = a?.processes.find((x) => x.pid === p.pid)?.rssKiB;
      rows.push(
        `| ${b.name} | ${p.pid} ${p.command} | ${mib(p.rssKiB)} | ${later === undefined ? "–" : mib(later)} | ${delta(p.rssKiB, later)} |`,
      );
    }
  }
  return ["| process | pid, command | RSS before MiB | RSS after MiB | change MiB |", "|---|---|---|---|---|", ...rows];
}

export function renderFuzzMarkdown(r: FuzzResults): string {
  const t = r.tally;
  const bad = failures(r);
  const byCode = [...t.byStatusCode].sort((a, b) => a[0].localeCompare(b[0]));
  const byCategory = [...t.byCategory].sort((a, b) => a[0].localeCompare(b[0]));
  const statuses = (m: Map<number | "client error", number>) =>
    [...m]
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])))
      .map(([s, n]) => `${s}: ${n}`)
      .join(", ");
  const lines = [
    "# bench:fuzz",
    "",
    `\`${r.command}\` — ${t.sent} generated bad requests (test/fuzz/bad-requests.ts, seed ${r.seed}, each a valid request with one defect) through the real local stack (edge under \`wrangler dev\` with a fresh local D1, small and large function on CPU with the embedded pair), ${r.inFlight} in flight. The stack started in ${r.stackStartS.toFixed(0)} s; the requests took ${t.durationS.toFixed(0)} s (${(t.sent / t.durationS).toFixed(1)}/s, ${(t.requestBytes / 1e6).toFixed(0)} MB of request bodies); the whole run ${r.totalS.toFixed(0)} s.`,
    `Machine: ${machineLine(r.machine)}. The load generator shares this machine with the stack.`,
    "",
    `**Verdict: ${bad.length === 0 ? "PASS" : "FAIL"}.** ${bad.length === 0 ? "No 5xx, no bad request accepted, every refusal a 4xx with the OpenAI error object and a message of at most 1 KB, and no new ledger row." : bad.join("; ")}`,
    "",
    "## Answers by status and error code",
    "",
    "| status | code | count |",
    "|---|---|---|",
    ...byCode.map(([k, n]) => {
      const [status, ...code] = k.split(" ");
      return `| ${status} | ${code.join(" ") || "–"} | ${n} |`;
    }),
    "",
    `5xx: **${t.fiveXx}**. Accepted (2xx): **${t.twoXx}**. No HTTP answer: **${t.clientErrors}**. 4xx without a proper error object: **${t.badErrorObjects}**. 4xx other than the predicted status or code: ${t.otherRefusals} (refused, but not as the case predicted).`,
    "",
    "## By kind of defect",
    "",
    "| defect | sent | statuses |",
    "|---|---|---|",
    ...byCategory.map(([c, m]) => `| ${c} | ${[...m.values()].reduce((a, b) => a + b, 0)} | ${statuses(m)} |`),
    "",
    "## Ledger",
    "",
    "Rows of the `ledger` table in the stack's local D1, read from its SQLite file once the usage queue had settled (no change for 5 s; the consumer batches up to 2 s).",
    "",
    "| when | rows |",
    "|---|---|",
    `| before the control requests | ${r.control.rowsBefore} |`,
    `| after ${r.control.sent} valid control requests (${r.control.answered} answered) | ${r.control.rowsAfter} |`,
    `| before the fuzz run | ${r.ledger.before} |`,
    `| after the fuzz run | ${r.ledger.after} |`,
    "",
    `New rows from the fuzz run: **${r.ledger.after - r.ledger.before}**; the fuzz key's \`/v1/usage\` counts ${r.ledger.fuzzKeyRequests} requests. The control requests show that billed work does appear in the count.`,
    "",
    "## Memory (RSS)",
    "",
    "Each process of the stack with its children (wrangler dev runs workerd as a child), before the fuzz run (after the control requests) and after it.",
    "",
    ...memoryTable(r.memory.before, r.memory.after),
    "",
    "During the run (RSS of each process tree in MiB, after every 1000 requests):",
    "",
    `| sent | ${r.memory.before.map((m) => m.name).join(" | ")} |`,
    `|---|${r.memory.before.map(() => "---|").join("")}`,
    `| 0 | ${r.memory.before.map((m) => mib(m.totalKiB)).join(" | ")} |`,
    ...r.memory.during.map(
      (d) => `| ${d.sent} | ${r.memory.before.map((m) => mib(d.totalsKiB[m.name] ?? 0)).join(" | ")} |`,
    ),
    "",
  ];
  if (t.examples.size > 0) {
    lines.push("## Examples", "");
    for (const [kind, list] of t.examples) {
      lines.push(`### ${kind}`, "", ...list.map((e) => `- \`${e.replaceAll("`", "'").replaceAll("\n", " ")}\``), "");
    }
  }
  if (r.crash) lines.push("## Crash", "", "```", r.crash, "```", "");
  return lines.join("\n");
}
