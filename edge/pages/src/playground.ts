/** /playground: ask about an image, watch the answer stream in, see which path answered and where the models looked. */
import { generateItem } from "../../../scene-generator/generate-item.js";
import type { StitchResult } from "../../../shared/schemas/chat-completions.js";
import type { Explanation } from "../../../shared/schemas/inference.js";
import { apiFetch, streamChat } from "./api.js";
import { drawOverlay, hasThumbnail, type OverlayMode, type TileView } from "./heatmap.js";
import { $, keyBox, ms, showError, usd } from "./key.js";

const SCENE_SEED = 4242;
const SCENES = 6;
const MAX_OVERLAY_PX = 768;

const apiKey = keyBox();
const preview = $<HTMLImageElement>("preview");
const overlay = $<HTMLCanvasElement>("overlay");
const errorBox = $("error");
let image: string | null = null; // data: URL
let explanation: Explanation | null = null;

// ---- the image: file, drop, or a generated scene ----
function setImage(url: string, note = ""): void {
  image = url;
  explanation = null;
  preview.src = url;
  preview.hidden = false;
  overlay.hidden = true;
  $("drop").dataset.empty = "false";
  $("scene-note").hidden = !note;
  $("scene-note").textContent = note;
  $<HTMLFieldSetElement>("overlay-controls").disabled = true;
}

function readFile(file: File): void {
  if (!file.type.startsWith("image/")) {
    showError(errorBox, new Error(`Not an image: ${file.name}`));
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    $<HTMLSelectElement>("scene").value = "";
    setImage(String(reader.result));
  };
  reader.readAsDataURL(file);
}

$<HTMLInputElement>("image-file").addEventListener("change", (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) readFile(file);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = e.dataTransfer?.files[0];
  if (file) readFile(file);
});

const sceneSelect = $<HTMLSelectElement>("scene");
for (let i = 1; i <= SCENES; i++) sceneSelect.add(new Option(`Scene ${i}`, String(i)));
sceneSelect.addEventListener("change", () => {
  const index = Number(sceneSelect.value);
  if (!index) return;
  const item = generateItem(SCENE_SEED, index);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = item.side;
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  const rgba = ctx.createImageData(item.side, item.side);
  for (let p = 0; p < item.side * item.side; p++) {
    rgba.data.set(item.rgb.subarray(p * 3, p * 3 + 3), p * 4);
    rgba.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(rgba, 0, 0);
  const qa = item.questions[0];
  if (qa) $<HTMLInputElement>("question").value = qa.question;
  setImage(canvas.toDataURL("image/png"), qa ? `Its right answer: “${qa.answer}”.` : "");
});

// ---- asking ----
function stitchOptions(): Record<string, unknown> {
  const num = (id: string) => {
    const v = $<HTMLInputElement>(id).value.trim();
    return v === "" ? undefined : Number(v);
  };
  const options: Record<string, unknown> = {
    retention: num("retention"),
    prune_layer: num("prune-layer"),
    exit_threshold: num("exit-threshold"),
  };
  if ($<HTMLInputElement>("explain").checked) options.explain = true;
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

function messages(question: string) {
  return [
    {
      role: "user",
      content: [
        { type: "text", text: question },
        { type: "image_url", image_url: { url: image } },
      ],
    },
  ];
}

function pathText(s: StitchResult, threshold: number | undefined): string {
  if (s.path === "cache") return "cache (an earlier identical answer; no model ran)";
  const degraded = s.degraded ? ", degraded: the large model failed" : "";
  if (s.mode !== "sgl") return `${s.path === "small" ? "small model" : "large model"} (stitch-${s.mode}${degraded})`;
  const t = threshold === undefined ? "the exit threshold" : `the threshold ${threshold}`;
  return s.path === "small"
    ? `small: exited early (decision score reached ${t}${degraded})`
    : `large: escalated (decision score below ${t})`;
}

function showResult(s: StitchResult, threshold: number | undefined, requestId: string | null): void {
  $("path").textContent = pathText(s, threshold);
  $("path").dataset.path = s.path;
  const score = s.decision_score;
  $("score").textContent =
    score === null
      ? "— (no exit decision on this path)"
      : `${score.toFixed(3)} ${threshold === undefined ? "vs the server's exit threshold" : `vs threshold ${threshold}`}${
          threshold === undefined ? "" : score >= threshold ? " (≥: exit)" : " (<: escalate)"
        }`;
  $("accel").textContent = `small ${ms(s.accelerator_ms.small)} · large ${ms(s.accelerator_ms.large)}`;
  $("cost").textContent = usd(s.cost);
  $("cost").dataset.usd = String(s.cost);
  $("tokens").textContent = `${s.visual_tokens.kept} kept of ${s.visual_tokens.total}`;
  $("tokens").dataset.kept = String(s.visual_tokens.kept);
  $("request-id").textContent = s.request_id || requestId || "—";
}

function resetResult(): void {
  for (const id of ["path", "score", "accel", "cost", "tokens", "timing", "request-id"]) $(id).textContent = "—";
  $("answer").textContent = "…";
  $("compare-out").replaceChildren();
  errorBox.hidden = true;
  overlay.hidden = true;
  $<HTMLFieldSetElement>("overlay-controls").disabled = true;
}

$<HTMLFormElement>("ask-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const button = $<HTMLButtonElement>("ask");
  resetResult();
  if (!image) {
    $("answer").textContent = "—";
    showError(errorBox, new Error("Choose an image or a generated scene first."));
    return;
  }
  const question = $<HTMLInputElement>("question").value;
  const options = stitchOptions();
  const threshold = options.exit_threshold as number | undefined;
  button.disabled = true;
  $("answer").setAttribute("aria-busy", "true");
  const started = performance.now();
  try {
    const body = { model: $<HTMLSelectElement>("model").value, messages: messages(question), stitch: options };
    const answer = await streamChat(apiKey(), body, (text) => {
      $("answer").textContent = text;
    });
    const total = performance.now() - started;
    $("answer").textContent = answer.text || "(empty answer)";
    $("timing").textContent =
      `first text after ${answer.firstTokenMs?.toFixed(0) ?? "—"} ms, done after ${total.toFixed(0)} ms`;
    $("timing").dataset.firstTextMs = String(answer.firstTokenMs ?? "");
    if (answer.stitch) showResult(answer.stitch, answer.stitch.exit_threshold ?? threshold, answer.requestId);
    explanation = answer.stitch?.explanation ?? null;
    setupOverlay();
    await compare(question);
  } catch (err) {
    $("answer").textContent = "—";
    showError(errorBox, err);
  } finally {
    button.disabled = false;
    $("answer").setAttribute("aria-busy", "false");
  }
});

// ---- the overlay ----
function sizeCanvas(canvas: HTMLCanvasElement): void {
  const scale = Math.min(1, MAX_OVERLAY_PX / Math.max(preview.naturalWidth, preview.naturalHeight));
  const small = Math.max(preview.naturalWidth, preview.naturalHeight) < 256 ? 4 : 1; // crisp lines on tiny scenes
  canvas.width = Math.round(preview.naturalWidth * scale * small);
  canvas.height = Math.round(preview.naturalHeight * scale * small);
}

function setupOverlay(): void {
  const controls = $<HTMLFieldSetElement>("overlay-controls");
  if (!explanation) {
    $("overlay-info").textContent = "No explanation (turn on Explain under Advanced).";
    return;
  }
  controls.disabled = false;
  const keptRadio = document.querySelector<HTMLInputElement>('input[name="overlay"][value="kept"]');
  const rankingRadio = document.querySelector<HTMLInputElement>('input[name="overlay"][value="ranking"]');
  if (keptRadio) keptRadio.disabled = explanation.kept === null;
  if (rankingRadio) rankingRadio.disabled = explanation.ranking === null;
  const current = document.querySelector<HTMLInputElement>('input[name="overlay"]:checked');
  if (current?.disabled) {
    const fallback = [rankingRadio, keptRadio].find((r) => r && !r.disabled);
    if (fallback) fallback.checked = true;
  }
  $("view-box").hidden = !hasThumbnail(explanation.layout);
  redraw();
}

function redraw(): void {
  if (!explanation) return;
  const mode = (document.querySelector<HTMLInputElement>('input[name="overlay"]:checked')?.value ?? "none") as
    | OverlayMode
    | "none";
  const view = $<HTMLSelectElement>("tile-view").value as TileView;
  sizeCanvas(overlay);
  overlay.hidden = mode === "none";
  const info = $("overlay-info");
  if (mode === "none") {
    info.textContent = "Overlay off.";
    return;
  }
  const drawn = drawOverlay(overlay, explanation, mode, view);
  const tiles = `${explanation.layout.length} tile${explanation.layout.length > 1 ? "s" : ""}`;
  overlay.dataset.mode = mode;
  overlay.dataset.tokens = String(drawn.tokens);
  overlay.dataset.kept = String(drawn.kept);
  if (mode === "ranking") {
    info.textContent = `Small model's attention over ${drawn.tokens} of ${explanation.visual_tokens} visual tokens (${tiles}); yellow = most attended.`;
  } else {
    const total = explanation.kept?.length ?? 0;
    info.textContent = `The large model kept ${drawn.kept} of the ${drawn.tokens} visual tokens shown (${total} of ${explanation.visual_tokens} in all, ${((100 * total) / explanation.visual_tokens).toFixed(0)}%) from layer ${explanation.prune_layer}; veiled tokens were dropped.`;
  }
  overlay.setAttribute("aria-label", info.textContent ?? "");
}

for (const radio of document.querySelectorAll('input[name="overlay"]')) radio.addEventListener("change", redraw);
$("tile-view").addEventListener("change", redraw);

// ---- several r side by side (stitch-sgp at each r) ----
async function compare(question: string): Promise<void> {
  const list = $<HTMLInputElement>("compare")
    .value.split(",")
    .map((v) => Number(v.trim()))
    .filter((v) => v > 0 && v <= 1)
    .slice(0, 4);
  const out = $("compare-out");
  for (const r of list) {
    const res = await apiFetch(apiKey(), "/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "stitch-sgp",
        messages: messages(question),
        stitch: { ...stitchOptions(), retention: r, explain: true },
      }),
    });
    const reply = (await res.json()) as { choices: { message: { content: string } }[]; stitch: StitchResult };
    const figure = document.createElement("figure");
    const stage = document.createElement("div");
    stage.className = "stage";
    const img = document.createElement("img");
    img.src = image ?? "";
    img.alt = `The image at r = ${r}`;
    const canvas = document.createElement("canvas");
    sizeCanvas(canvas);
    const ex = reply.stitch.explanation;
    if (ex) drawOverlay(canvas, ex, "kept", "tiles");
    stage.append(img, canvas);
    const caption = document.createElement("figcaption");
    caption.textContent = `r = ${r}: kept ${reply.stitch.visual_tokens.kept} of ${reply.stitch.visual_tokens.total}; “${reply.choices[0]?.message.content ?? ""}”, ${usd(reply.stitch.cost)}`;
    figure.append(stage, caption);
    out.append(figure);
  }
}
