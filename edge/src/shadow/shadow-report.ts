/**
 * What the operator sees of shadow escalation (GET /admin/shadow, the dashboard, /admin/metrics): the samples, the
 * agreement by score band, the threshold served now and where it came from, the estimated disagreement of exits at
 * it with its 95% upper bound, the exit rate (from the ledger), and the shadows' cost against all large compute.
 */
import type { ShadowReport } from "../../../shared/index.js";
import { agreementByBand, NEVER_EXIT } from "../../../shared/shadow/exit-curve.js";
import type { Config } from "../config.js";
import { type Calibration, certifiedFor, currentCalibrations } from "./calibration.js";
import { shadowCost } from "./samples-db.js";

/**
 * `pair` (`<small>|<large>`, as GET /admin/shadow?pair= names it) selects the pack pair reported on; default the one
 * that reported last (the pair being served, in a deployment of one). A pair without samples reports none.
 */
export async function shadowReport(db: D1Database, config: Config["shadow"], pair?: string): Promise<ShadowReport> {
  const calibrations = await currentCalibrations(db, config);
  const calibration = (pair === undefined ? calibrations[0] : calibrations.find((c) => c.pair === pair)) ?? null;
  // The threshold a request without a dial is served: the target's, once the pair has enough samples.
  const served = config.target !== undefined && calibration && calibration.samples.length >= config.minSamples;
  const point = served && config.target !== undefined ? certifiedFor(calibration, config.target) : null;
  const [cost, paths] = await Promise.all([shadowCost(db), ledgerPaths(db)]);
  const exits = paths.small + paths.large;
  const large = paths.largeMs + cost.acceleratorMsLarge;
  return {
    pair: calibration?.pair ?? pair ?? null,
    pairs: calibrations.map((c) => ({
      pair: c.pair,
      samples: c.samples.length,
      threshold: servedThreshold(c, config),
    })),
    samples: calibration?.samples.length ?? 0,
    target: config.target ?? null,
    min_samples: config.minSamples,
    threshold: served ? (point?.threshold ?? NEVER_EXIT) : null,
    calibration: served ? `${calibration.id}/${config.target}` : "offline",
    estimate: point && {
      exits: point.exits,
      disagreements: point.disagreements,
      rate: point.disagreements / point.exits,
      upper95: point.upper,
    },
    bands: agreementByBand(calibration?.samples ?? []),
    exits: { small: paths.small, large: paths.large, rate: exits > 0 ? paths.small / exits : null },
    shadow_cost: {
      samples: cost.samples,
      accelerator_ms_large: cost.acceleratorMsLarge,
      share_of_large: large > 0 ? cost.acceleratorMsLarge / large : null,
    },
  };
}

/** The threshold a pair's requests without a dial are served (null: the offline one, too few samples or no target). */
function servedThreshold(c: Calibration, config: Config["shadow"]): number | null {
  if (config.target === undefined || c.samples.length < config.minSamples) return null;
  return certifiedFor(c, config.target)?.threshold ?? NEVER_EXIT;
}

/** stitch-sgl answers by path, and all large compute billed, from the D1 ledger. */
async function ledgerPaths(db: D1Database) {
  const { results } = await db
    .prepare(
      `SELECT path, SUM(CASE WHEN mode = 'sgl' THEN 1 ELSE 0 END) AS sgl, COALESCE(SUM(accelerator_ms_large), 0) AS ms
         FROM ledger GROUP BY path`,
    )
    .all<{ path: string; sgl: number; ms: number }>();
  const of = (path: string) => results.find((r) => r.path === path);
  return {
    small: of("small")?.sgl ?? 0,
    large: of("large")?.sgl ?? 0,
    largeMs: results.reduce((sum, r) => sum + r.ms, 0),
  };
}

/**
 * The report as Prometheus gauges, appended to the ledger's: the unlabelled ones of the pair reported on (the one
 * that reported last), and each pair's samples and served threshold labelled `pair`.
 */
export function shadowMetrics(r: ShadowReport): string {
  const gauge = (name: string, help: string, value: number | null) =>
    value === null ? "" : `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`;
  const perPair = (name: string, help: string, value: (p: ShadowReport["pairs"][number]) => number | null) => {
    const lines = r.pairs.flatMap((p) => {
      const v = value(p);
      return v === null ? [] : [`${name}{pair="${prometheusLabel(p.pair)}"} ${v}\n`];
    });
    return lines.length === 0 ? "" : `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${lines.join("")}`;
  };
  return [
    perPair("stitch_shadow_pair_samples", "Shadow samples in the calibration window, per pack pair", (p) => p.samples),
    perPair(
      "stitch_shadow_pair_threshold",
      "Exit threshold served from the shadow calibration, per pack pair",
      (p) => p.threshold,
    ),
    gauge("stitch_shadow_samples", "Shadow samples in the calibration window", r.samples),
    gauge("stitch_shadow_samples_total", "Shadow samples kept", r.shadow_cost.samples),
    gauge("stitch_shadow_threshold", "Exit threshold served from the shadow calibration", r.threshold),
    gauge("stitch_shadow_disagreement", "Disagreement of exits at the threshold (samples)", r.estimate?.rate ?? null),
    gauge("stitch_shadow_disagreement_upper95", "Its 95% upper confidence bound", r.estimate?.upper95 ?? null),
    gauge("stitch_exit_rate", "Share of stitch-sgl answers that exited early (ledger)", r.exits.rate),
    gauge(
      "stitch_shadow_accelerator_ms_large",
      "Large-model accelerator time spent on shadows (operator's cost)",
      r.shadow_cost.accelerator_ms_large,
    ),
    gauge("stitch_shadow_large_share", "Shadows' share of all large-model compute", r.shadow_cost.share_of_large),
  ].join("");
}

/** A Prometheus label value: backslash, double quote and line feed escaped. */
const prometheusLabel = (value: string) => value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
