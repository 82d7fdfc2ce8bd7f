/**
 * The two browser pages in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core), against
 * the real local stack that `npm start` runs (startLocalStack on free ports: wrangler dev builds and serves the pages).
 * The playground asks about an uploaded scene PNG and must show the streamed answer, the path and an overlay with the
 * kept-token count the API reported; the dashboard must list that request and export it as CSV. Screenshots go to
 * test/browser/screenshots/. Without Chromium this fails (it does not skip): `.ci/run` installs it.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { encodePng, generateItem, sceneWords } from "../../scene-generator/index.js";
import { USAGE_CSV_COLUMNS } from "../../shared/index.js";
import type { LocalStack } from "../../tools/start-local-stack.js";
import { type Dom, paintedPixels, SHOTS, type StackInBrowser, startStackInBrowser } from "./browser-kit.js";

interface Stitch {
  request_id: string;
  path: string;
  visual_tokens: { total: number; kept: number };
  explanation?: { visual_tokens: number; kept: number[] | null; ranking: number[] | null };
}

/** The `stitch` object and the text of a streamed answer, from the SSE body the page received. */
function parseStream(body: string): { text: string; stitch: Stitch } {
  let text = "";
  let stitch: Stitch | undefined;
  for (const line of body.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const chunk = JSON.parse(line.slice(6));
    text += chunk.choices?.[0]?.delta?.content ?? "";
    stitch = chunk.stitch ?? stitch;
  }
  if (!stitch) throw new Error(`no stitch chunk in ${body.slice(0, 300)}`);
  return { text, stitch };
}

/** Every visible form control has a label (keyboard and screen-reader users can find it). */
const unlabelled = (page: Page) =>
  page.$$eval("input, select, button, textarea", (els) =>
    (els as Dom[])
      .filter((el) => el.offsetParent !== null)
      .filter((el) => {
        if (el.tagName === "BUTTON") return !(el.textContent ?? "").trim();
        return (el.labels?.length ?? 0) === 0 && !el.getAttribute("aria-label");
      })
      .map((el) => String(el.outerHTML).slice(0, 80)),
  );

const overflowsX = (page: Page) =>
  page.evaluate(() => {
    const root = (globalThis as Dom).document.documentElement;
    return root.scrollWidth > root.clientWidth + 1;
  });

describe("the playground and the dashboard in Chromium", () => {
  let stack: LocalStack;
  let page: Page;
  let running: StackInBrowser | undefined;
  const output: string[] = [];
  const figures: Record<string, unknown> = {};
  let asked: { text: string; stitch: Stitch } | undefined;

  beforeAll(async () => {
    running = await startStackInBrowser(output, { acceptDownloads: true });
    ({ stack, page } = running);
  }, 240_000);

  afterAll(async () => {
    await running?.close();
    if (Object.keys(figures).length)
      writeFileSync(path.join(SHOTS, "figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
  }, 60_000);

  it("serves both pages as small static assets with a strict CSP", async () => {
    for (const name of ["playground", "dashboard"]) {
      const res = await fetch(`${stack.edgeUrl}/${name}`);
      expect(res.status, output.slice(-20).join("\n")).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
      expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
      const html = await res.text();
      const script = /src="\/(\w+\.js)"/.exec(html)?.[1];
      const js = await (await fetch(`${stack.edgeUrl}/${script}`)).text();
      const css = await (await fetch(`${stack.edgeUrl}/pages.css`)).text();
      const bytes = Buffer.byteLength(html) + Buffer.byteLength(js) + Buffer.byteLength(css);
      figures[`page_weight_bytes_${name}`] = bytes;
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin (no CDN)
      expect(bytes).toBeLessThan(250_000);
    }
  });

  it("asks about an uploaded scene: streamed answer, path, scores, cost and the overlays", async () => {
    const item = generateItem(4242, 11);
    const qa = item.questions[0];
    if (!qa) throw new Error("no question");
    await page.goto(`${stack.edgeUrl}/playground`);
    await page.fill("#api-key", stack.apiKey);
    await page.press("#api-key", "Tab");
    await page.setInputFiles("#image-file", {
      name: "scene.png",
      mimeType: "image/png",
      buffer: Buffer.from(encodePng(item.rgb, item.side)),
    });
    await page.waitForSelector("#preview:not([hidden])");
    await page.fill("#question", qa.question);
    await page.selectOption("#model", "stitch-sgl");
    await page.click("#advanced summary");
    await page.fill("#exit-threshold", "1"); // the small model never reaches 1: escalate, so there are kept tokens
    expect(await unlabelled(page)).toEqual([]);

    const response = page.waitForResponse((r) => r.url().endsWith("/v1/chat/completions"));
    const started = Date.now();
    await page.click("#ask");
    await page.waitForFunction(
      () => !["", "…", "—"].includes((globalThis as Dom).document.getElementById("answer")?.textContent ?? ""),
    );
    figures.time_to_first_answer_text_ms_test = Date.now() - started;
    await page.waitForSelector("#path[data-path]");
    figures.time_to_full_answer_ms_test = Date.now() - started;
    figures.time_to_first_answer_text_ms_page = Number(await page.getAttribute("#timing", "data-first-text-ms"));
    asked = parseStream(await (await response).text());
    const { stitch } = asked;

    const words = new Set(sceneWords());
    const answer = (await page.textContent("#answer")) ?? "";
    expect(answer).toBe(asked.text);
    for (const word of answer.split(" ")) expect(words).toContain(word);
    expect(stitch.path).toBe("large");
    expect(await page.getAttribute("#path", "data-path")).toBe("large");
    expect(await page.textContent("#path")).toContain("escalated");
    expect(await page.textContent("#score")).toMatch(/^\d\.\d{3} vs threshold 1 \(<: escalate\)$/);
    expect(await page.textContent("#accel")).toMatch(/^small \d+\.\d+ ms · large \d+\.\d+ ms$/);
    expect(await page.textContent("#cost")).toMatch(/^\$\d/);
    expect(await page.textContent("#request-id")).toBe(stitch.request_id);

    // The small model's ranking as a heatmap over every visual token.
    const explanation = stitch.explanation;
    expect(explanation?.ranking).toHaveLength(stitch.visual_tokens.total);
    await page.waitForSelector("#overlay:not([hidden])");
    expect(await page.getAttribute("#overlay", "data-mode")).toBe("ranking");
    expect(Number(await page.getAttribute("#overlay", "data-tokens"))).toBe(stitch.visual_tokens.total);
    expect(await paintedPixels(page, "#overlay")).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SHOTS, "playground-ranking.png"), fullPage: true });

    // The kept tokens, with the count the API reported.
    await page.check('input[name="overlay"][value="kept"]');
    expect(await page.getAttribute("#overlay", "data-mode")).toBe("kept");
    expect(stitch.visual_tokens.kept).toBeLessThan(stitch.visual_tokens.total);
    expect(explanation?.kept).toHaveLength(stitch.visual_tokens.kept);
    expect(Number(await page.getAttribute("#overlay", "data-kept"))).toBe(stitch.visual_tokens.kept);
    expect(await page.textContent("#overlay-info")).toContain(
      `kept ${stitch.visual_tokens.kept} of the ${stitch.visual_tokens.total}`,
    );
    expect(await paintedPixels(page, "#overlay")).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SHOTS, "playground-kept.png"), fullPage: true });
  });

  it("shows the API's error message, not a broken page", async () => {
    await page.fill("#api-key", `sk-stitch-${"0".repeat(16)}-${"0".repeat(48)}`);
    await page.press("#api-key", "Tab");
    await page.click("#ask");
    await page.waitForSelector("#error:not([hidden])");
    expect(await page.textContent("#error")).toContain("Invalid API key");
    await page.fill("#api-key", stack.apiKey);
    await page.press("#api-key", "Tab");
  });

  it("the dashboard shows the request just made and exports it as CSV", async () => {
    expect(asked).toBeDefined();
    const id = asked?.stitch.request_id as string;
    // The ledger is written by the usage queue's consumer (batches of up to 2 s): wait until the row is there.
    await vi.waitFor(
      async () => {
        const res = await fetch(`${stack.edgeUrl}/v1/usage/requests?limit=5`, {
          headers: { authorization: `Bearer ${stack.apiKey}` },
        });
        const list = (await res.json()) as { data: { request_id: string }[] };
        expect(list.data.map((r) => r.request_id)).toContain(id);
      },
      { timeout: 20_000, interval: 250 },
    );
    await page.goto(`${stack.edgeUrl}/dashboard`); // same tab: the key is still in session storage
    await page.waitForSelector("body[data-loaded]");
    await page.waitForSelector(`#latest tr[data-request-id="${id}"]`);
    const row = await page.$$eval(`#latest tr[data-request-id="${id}"] td`, (tds) => tds.map((td) => td.textContent));
    expect(row[3]).toBe("large");
    expect(Number(row[4])).toBeGreaterThan(0);
    expect(Number(await page.textContent("#s-requests"))).toBeGreaterThanOrEqual(1);
    expect(await page.textContent("#s-exit")).toMatch(/%|—/);
    expect(await page.textContent("#s-budget")).toContain("unlimited");
    for (const chart of ["#chart-requests", "#chart-cost", "#chart-accel"])
      expect(await paintedPixels(page, chart)).toBeGreaterThan(0);
    expect(await unlabelled(page)).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, "dashboard.png"), fullPage: true });

    const download = page.waitForEvent("download");
    await page.click("#export");
    const file = await (await download).path();
    const csv = readFileSync(file, "utf8").trim().split("\r\n");
    expect(csv[0]).toBe(USAGE_CSV_COLUMNS.join(","));
    const line = csv.find((l) => l.startsWith(`${id},`));
    expect(line?.split(",")[USAGE_CSV_COLUMNS.indexOf("path")]).toBe("large");
  });

  it("works at phone width", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${stack.edgeUrl}/dashboard`);
    await page.waitForSelector("body[data-loaded]");
    expect(await overflowsX(page)).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, "dashboard-phone.png") });
    await page.goto(`${stack.edgeUrl}/playground`);
    expect(await overflowsX(page)).toBe(false);
    await page.selectOption("#scene", "2");
    await page.click("#ask");
    await page.waitForSelector("#path[data-path]");
    expect(await overflowsX(page)).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, "playground-phone.png"), fullPage: true });
    for (const file of readdirSync(SHOTS).filter((f) => f.endsWith(".png")))
      expect(statSync(path.join(SHOTS, file)).size).toBeLessThan(400_000);
  });
});
