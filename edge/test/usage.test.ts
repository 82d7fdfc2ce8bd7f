/** The usage API the dashboard reads: by day and path, early exits, budget, latest requests and the CSV export. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { USAGE_CSV_COLUMNS } from "../../shared/index.js";
import { ask, chatBody, createKey, edge, ledgerRows } from "./helpers.js";

const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const today = () => new Date().toISOString().slice(0, 10);
/** Ledger rows in the order the API sorts them: time, then request id (workerd's clock stands still between I/O). */
const byTime = (rows: Record<string, unknown>[]) =>
  [...rows].sort(
    (a, b) =>
      (a.created_at as number) - (b.created_at as number) || String(a.request_id).localeCompare(String(b.request_id)),
  );

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted && ch === '"' && text[i + 1] === '"') {
      field += '"';
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
    } else if (!quoted && ch === ",") {
      row.push(field);
      field = "";
    } else if (!quoted && ch === "\n") {
      row.push(field.replace(/\r$/, ""));
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += ch;
    }
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

describe("usage for the dashboard", () => {
  it("sums by day and path, counts early exits of stitch-sgl and reports the budget", async () => {
    const { id, key } = await createKey({ budget_usd: 1 });
    const body = chatBody();
    await ask(key, body); // sgl, small
    await ask(key, body); // cache
    await ask(key, chatBody({ question: "escalate" })); // sgl, large
    await ask(key, chatBody({ model: "stitch-small" })); // small, but no exit decision
    const res = await edge("/v1/usage", auth(key));
    expect(res.status).toBe(200);
    const day = today();
    expect(
      res.json.by_day_path.map((r: { day: string; path: string; requests: number }) => [r.day, r.path, r.requests]),
    ).toEqual([
      [day, "cache", 1],
      [day, "large", 1],
      [day, "small", 2],
    ]);
    expect(res.json.early_exit).toEqual({ eligible: 2, exited: 1 });
    const spent = (await ledgerRows(id)).reduce((sum, r) => sum + (r.price_nanos as number), 0) / 1e9;
    // The key record is read before this request; every request above has been billed by then.
    expect(res.json.budget.limit_usd).toBe(1);
    expect(res.json.budget.spent_usd).toBeCloseTo(spent, 12);
    expect(res.json.budget.left_usd).toBeCloseTo(1 - spent, 12);
    // Existing fields are unchanged.
    expect(res.json.totals.requests).toBe(4);
  });

  it("reports an unlimited budget as null", async () => {
    const { key } = await createKey();
    expect((await edge("/v1/usage", auth(key))).json.budget).toEqual({ limit_usd: null, spent_usd: 0, left_usd: null });
  });

  it("lists the latest requests, newest first, with path and cost", async () => {
    const { id, key } = await createKey();
    const first = await ask(key, chatBody());
    const second = await ask(key, chatBody({ question: "escalate" }));
    const res = await edge("/v1/usage/requests?limit=5", auth(key));
    expect(res.status).toBe(200);
    expect(res.json.object).toBe("list");
    const newestFirst = byTime(await ledgerRows(id)).reverse();
    expect(newestFirst.map((r) => r.request_id).sort()).toEqual(
      [first.headers.get("x-request-id"), second.headers.get("x-request-id")].sort(),
    );
    expect(res.json.data.map((r: { request_id: string }) => r.request_id)).toEqual(
      newestFirst.map((r) => r.request_id),
    );
    const row = res.json.data.find((r: { request_id: string }) => r.request_id === second.headers.get("x-request-id"));
    const ledger = newestFirst.find((r) => r.request_id === row.request_id);
    expect(row).toMatchObject({
      path: "large",
      mode: "sgl",
      model: "stitch-sgl",
      day: today(),
      accelerator_ms: { small: ledger?.accelerator_ms_small, large: ledger?.accelerator_ms_large },
      visual_tokens: { total: ledger?.visual_tokens_total, kept: ledger?.visual_tokens_kept },
    });
    expect(row.cost).toBeCloseTo(second.json.stitch.cost, 12);
    expect(Date.parse(row.created)).toBe(ledger?.created_at);
    expect((await edge("/v1/usage/requests?limit=1", auth(key))).json.data).toHaveLength(1);
    expect((await edge("/v1/usage/requests?limit=0", auth(key))).status).toBe(400);
    expect((await edge("/v1/usage/requests?limit=101", auth(key))).status).toBe(400);
    expect((await edge("/v1/usage/requests")).status).toBe(401);
  });

  it("exports the period's ledger rows as CSV, oldest first, only the caller's", async () => {
    const { id, key } = await createKey();
    const other = await createKey();
    await ask(other.key, chatBody());
    const a = await ask(key, chatBody());
    const b = await ask(key, chatBody({ question: "escalate" }));
    const res = await edge(`/v1/usage/export.csv?from=${today()}&to=${today()}`, auth(key));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(res.headers.get("content-disposition")).toContain(`stitch-usage-${today()}-to-${today()}.csv`);
    const [header, ...rows] = parseCsv(res.text);
    expect(header).toEqual([...USAGE_CSV_COLUMNS]);
    const ledger = byTime(await ledgerRows(id));
    expect(ledger.map((r) => r.request_id).sort()).toEqual(
      [a.headers.get("x-request-id"), b.headers.get("x-request-id")].sort(),
    );
    expect(rows.map((r) => r[0])).toEqual(ledger.map((r) => r.request_id));
    const col = (name: (typeof USAGE_CSV_COLUMNS)[number]) => USAGE_CSV_COLUMNS.indexOf(name);
    rows.forEach((r, i) => {
      expect(r[col("path")]).toBe(ledger[i]?.path);
      expect(Number(r[col("cost_usd")])).toBeCloseTo((ledger[i]?.price_nanos as number) / 1e9, 9);
      expect(Number(r[col("visual_tokens_kept")])).toBe(ledger[i]?.visual_tokens_kept);
    });
    const empty = await edge("/v1/usage/export.csv?from=2001-01-01&to=2001-01-31", auth(key));
    expect(parseCsv(empty.text)).toEqual([[...USAGE_CSV_COLUMNS]]);
    expect((await edge("/v1/usage/export.csv?from=2030-01-02&to=2030-01-01", auth(key))).status).toBe(400);
  });

  it("pages through more rows than one read (keyset by time and request id)", async () => {
    const { id, key } = await createKey();
    const ids = Array.from({ length: 2100 }, (_, i) => `req-${String(i).padStart(5, "0")}`);
    await env.DB.batch(
      ids.map(
        (requestId, i) =>
          env.DB.prepare(
            `INSERT INTO ledger (request_id, key_id, path, mode, model, visual_tokens_total, visual_tokens_kept,
             prompt_tokens, completion_tokens, price_nanos, created_at, day)
           VALUES (?, ?, 'small', 'sgl', 'stitch-sgl', 64, 64, 10, 1, 200000, ?, '2020-05-01')`,
          ).bind(requestId, id, 1_588_291_200_000 + Math.floor(i / 3)), // three rows share each millisecond
      ),
    );
    const res = await edge("/v1/usage/export.csv?from=2020-05-01&to=2020-05-01", auth(key));
    const [, ...lines] = parseCsv(res.text);
    expect(lines.map((r) => r[0])).toEqual(ids);
  });
});
