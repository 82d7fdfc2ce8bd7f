/** The benchmark reports' Markdown: one table writer for all of them. */

/** A pipe table: the header row, its rule, then each row (cells as given). */
export function markdownTable(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** A number with `digits` decimals, or an en dash when it is not finite (no measurement). */
export const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : "–");

/** Counts by name, sorted ("200: 373, 503: 737"), or an en dash when there are none. */
export const counts = (c: Record<string, number>): string =>
  Object.entries(c)
    .sort()
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ") || "–";
