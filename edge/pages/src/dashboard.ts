/** /dashboard: the signed-in key's usage from /v1/usage, /v1/usage/requests and /v1/usage/export.csv. */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartDataset,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import type { UsageReport, UsageRequestList } from "../../../shared/schemas/usage-report.js";
import { apiFetch, apiJson } from "./api.js";
import { $, keyBox, ms, showError, usd } from "./key.js";
import { shadowPanel } from "./shadow-panel.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
shadowPanel();

const PATHS = ["cache", "small", "large"] as const;
const COLOURS: Record<string, string> = { cache: "#8a8f98", small: "#2f7d32", large: "#c2410c" };
const errorBox = $("error");
const charts = new Map<string, Chart>();

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
$<HTMLInputElement>("to").value = day(Date.now());
$<HTMLInputElement>("from").value = day(Date.now() - 29 * 86_400_000);
const period = () => `from=${$<HTMLInputElement>("from").value}&to=${$<HTMLInputElement>("to").value}`;
const pct = (part: number, whole: number) => (whole === 0 ? "—" : `${((100 * part) / whole).toFixed(1)}%`);

const apiKey = keyBox((key) => {
  if (key) void load();
});

function days(report: UsageReport): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${report.from}T00:00:00Z`); t <= Date.parse(`${report.to}T00:00:00Z`); t += 86_400_000)
    out.push(day(t));
  return out;
}

function barChart(id: string, labels: string[], datasets: ChartDataset<"bar">[], unit: string): void {
  charts.get(id)?.destroy();
  const canvas = $<HTMLCanvasElement>(id);
  charts.set(
    id,
    new Chart(canvas, {
      type: "bar",
      data: { labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: unit } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    }),
  );
  const sums = datasets.map((d) => `${d.label} ${(d.data as number[]).reduce((a, b) => a + b, 0).toPrecision(4)}`);
  canvas.setAttribute(
    "aria-label",
    `${canvas.getAttribute("aria-label")?.split(":")[0]}: totals ${sums.join(", ")} ${unit}`,
  );
}

function render(report: UsageReport, latest: UsageRequestList): void {
  const t = report.totals;
  $("period-text").textContent = `${report.from} to ${report.to} (UTC)`;
  $("s-requests").textContent = String(t.requests);
  $("s-cost").textContent = usd(t.cost);
  $("s-accel").textContent =
    `${ms(t.accelerator_ms.small + t.accelerator_ms.large)} (small ${ms(t.accelerator_ms.small)}, large ${ms(t.accelerator_ms.large)})`;
  const { eligible, exited } = report.early_exit;
  $("s-exit").textContent = `${pct(exited, eligible)} (${exited} of ${eligible})`;
  $("s-cache").textContent = `${pct(t.cache_hits, t.requests)} (${t.cache_hits} of ${t.requests})`;
  const b = report.budget;
  $("s-budget").textContent =
    b.limit_usd === null ? `unlimited (spent ${usd(b.spent_usd)})` : `${usd(b.left_usd ?? 0)} of ${usd(b.limit_usd)}`;

  const labels = days(report);
  const cell = (path: string, d: string) => report.by_day_path.find((r) => r.path === path && r.day === d);
  const byPath = (pick: (r: NonNullable<ReturnType<typeof cell>>) => number) =>
    PATHS.map((path) => ({
      label: path,
      backgroundColor: COLOURS[path],
      data: labels.map((d) => {
        const r = cell(path, d);
        return r ? pick(r) : 0;
      }),
    }));
  barChart(
    "chart-requests",
    labels,
    byPath((r) => r.requests),
    "requests",
  );
  barChart(
    "chart-cost",
    labels,
    byPath((r) => r.cost),
    "US$",
  );
  const byDay = (d: string) => report.by_day.find((r) => r.day === d);
  barChart(
    "chart-accel",
    labels,
    (["small", "large"] as const).map((fn) => ({
      label: `${fn} function`,
      backgroundColor: fn === "small" ? COLOURS.small : COLOURS.large,
      data: labels.map((d) => byDay(d)?.accelerator_ms[fn] ?? 0),
    })),
    "ms",
  );

  const row = (cells: (string | number)[]) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = String(c);
      tr.append(td);
    }
    return tr;
  };
  $("by-path")
    .querySelector("tbody")
    ?.replaceChildren(
      ...report.by_path.map((p) =>
        row([
          p.path,
          p.requests,
          p.cost.toFixed(6),
          p.accelerator_ms.small.toFixed(2),
          p.accelerator_ms.large.toFixed(2),
        ]),
      ),
    );
  const latestBody = $("latest").querySelector("tbody");
  latestBody?.replaceChildren(
    ...latest.data.map((r) => {
      const tr = row([
        r.created.replace("T", " ").slice(0, 19),
        r.request_id,
        r.model,
        r.path,
        r.cost.toFixed(6),
        (r.accelerator_ms.small + r.accelerator_ms.large).toFixed(2),
        `${r.visual_tokens.kept} / ${r.visual_tokens.total}`,
      ]);
      tr.dataset.requestId = r.request_id;
      return tr;
    }),
  );
  if (latest.data.length === 0) latestBody?.append(row(["No requests in this period."]));
}

async function load(): Promise<void> {
  errorBox.hidden = true;
  try {
    const [report, latest] = await Promise.all([
      apiJson<UsageReport>(apiKey(), `/v1/usage?${period()}`),
      apiJson<UsageRequestList>(apiKey(), `/v1/usage/requests?limit=20&${period()}`),
    ]);
    render(report, latest);
    document.body.dataset.loaded = String(Date.now());
  } catch (err) {
    showError(errorBox, err);
  }
}

$<HTMLFormElement>("period").addEventListener("submit", (e) => {
  e.preventDefault();
  void load();
});

$("export").addEventListener("click", async () => {
  errorBox.hidden = true;
  try {
    const res = await apiFetch(apiKey(), `/v1/usage/export.csv?${period()}`);
    const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? "stitch-usage.csv";
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    showError(errorBox, err);
  }
});

if (apiKey()) void load();
