/**
 * The dashboard's operator panel: shadow escalation's state from GET /admin/shadow (the admin secret, kept in this
 * tab's memory only, never stored): the samples, the threshold served and its calibration, the estimated
 * disagreement of early exits at it with its 95% upper bound, the exit rate, the shadows' share of large-model
 * compute, and agreement by score band.
 */
import type { ShadowReport } from "../../../shared/schemas/shadow.js";
import { apiJson } from "./api.js";
import { $, showError } from "./key.js";

const pct = (v: number | null | undefined) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(2)}%`);

export function shadowPanel(): void {
  const secret = $<HTMLInputElement>("admin-secret");
  const error = $("shadow-error");
  const load = async () => {
    error.hidden = true;
    try {
      render(await apiJson<ShadowReport>(secret.value.trim(), "/admin/shadow"));
    } catch (err) {
      showError(error, err);
    }
  };
  $("shadow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
}

function render(r: ShadowReport): void {
  $("shadow-result").hidden = false;
  // The pair that reported last; the others the edge calibrates are named with their sample counts.
  const others = r.pairs.filter((p) => p.pair !== r.pair).map((p) => `${p.pair} (${p.samples})`);
  $("sh-pair").textContent = `${r.pair ?? "none yet"}${others.length > 0 ? `; also ${others.join(", ")}` : ""}`;
  $("sh-samples").textContent = `${r.samples} (minimum ${r.min_samples})`;
  $("sh-threshold").textContent =
    r.threshold === null
      ? "offline calibration"
      : r.threshold > 1
        ? "none certified: nothing exits"
        : r.threshold.toFixed(4);
  $("sh-calibration").textContent = r.calibration;
  $("sh-target").textContent = r.target === null ? "not set" : pct(r.target);
  $("sh-estimate").textContent = r.estimate
    ? `${pct(r.estimate.rate)} (95% upper bound ${pct(r.estimate.upper95)}; ${r.estimate.disagreements} of ${r.estimate.exits} exits)`
    : "—";
  $("sh-exit-rate").textContent = `${pct(r.exits.rate)} (${r.exits.small} of ${r.exits.small + r.exits.large})`;
  $("sh-cost").textContent =
    `${pct(r.shadow_cost.share_of_large)} (${r.shadow_cost.samples} shadow runs, ${r.shadow_cost.accelerator_ms_large.toFixed(1)} ms)`;
  const body = $("shadow-bands").querySelector("tbody") as HTMLTableSectionElement;
  body.replaceChildren(
    ...r.bands.map((b) => {
      const row = document.createElement("tr");
      for (const text of [
        `${b.from.toFixed(1)}–${b.to.toFixed(1)}`,
        String(b.samples),
        b.samples === 0 ? "—" : pct(b.agreed / b.samples),
      ]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
}
