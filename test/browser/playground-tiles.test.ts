/**
 * The playground on a pack pair whose images become several tiles (the tiny exported InternVL3 pair, random
 * weights): a photograph is cut into detail tiles plus a thumbnail, and the overlay draws the small model's ranking
 * and the kept tokens over each tile, switching between the detail tiles and the thumbnail.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalStack } from "../../tools/start-local-stack.js";
import { type Dom, paintedPixels, SHOTS, type StackInBrowser, startStackInBrowser } from "./browser-kit.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
// 451 × 300 is cut into 3 × 2 tiles and a thumbnail: 7 × 256 visual tokens.
const PHOTO = path.join(ROOT, "test/fixtures/photos/chelsea.jpg");
const TOKENS = 7 * 256;

describe("the playground on a multi-tile pack pair in Chromium", () => {
  let stack: LocalStack;
  let page: Page;
  let running: StackInBrowser | undefined;
  const output: string[] = [];

  beforeAll(async () => {
    // The functions inherit this process's environment: the pair they load.
    Object.assign(process.env, {
      STITCH_PACKS_DIR: path.join(ROOT, "test/fixtures/packs"),
      STITCH_SMALL_PACK: "internvl3-tiny-small",
      STITCH_LARGE_PACK: "internvl3-tiny-large",
    });
    running = await startStackInBrowser(output);
    ({ stack, page } = running);
  }, 240_000);

  afterAll(async () => {
    await running?.close();
  }, 60_000);

  it("draws the ranking and the kept tokens over every tile of a photograph, and over the thumbnail", async () => {
    await page.goto(`${stack.edgeUrl}/playground`);
    await page.fill("#api-key", stack.apiKey);
    await page.press("#api-key", "Tab");
    await page.setInputFiles("#image-file", { name: "cat.jpg", mimeType: "image/jpeg", buffer: readFileSync(PHOTO) });
    await page.waitForSelector("#preview:not([hidden])");
    await page.fill("#question", "What is in this picture?");
    await page.selectOption("#model", "stitch-sgp");
    await page.click("#advanced summary");
    await page.fill("#retention", "0.09");
    await page.click("#ask");
    await page.waitForSelector("#path[data-path]", { timeout: 60_000 });
    expect(await page.textContent("#tokens"), output.slice(-20).join("\n")).toBe(
      `${Math.ceil(0.09 * TOKENS)} kept of ${TOKENS}`,
    );
    await page.waitForSelector("#overlay:not([hidden])");
    expect(await page.isVisible("#view-box")).toBe(true);
    // The detail tiles hold all but the thumbnail's 256 tokens.
    expect(Number(await page.getAttribute("#overlay", "data-tokens"))).toBe(TOKENS - 256);
    expect(await paintedPixels(page, "#overlay")).toBeGreaterThan(0);
    await page.check('input[name="overlay"][value="kept"]');
    const keptInTiles = Number(await page.getAttribute("#overlay", "data-kept"));
    await page.screenshot({ path: path.join(SHOTS, "playground-tiles-kept.png"), fullPage: true });
    await page.selectOption("#tile-view", "thumbnail");
    expect(Number(await page.getAttribute("#overlay", "data-tokens"))).toBe(256);
    const keptInThumbnail = Number(await page.getAttribute("#overlay", "data-kept"));
    expect(keptInTiles + keptInThumbnail).toBe(Math.ceil(0.09 * TOKENS));
    expect(await page.evaluate(() => (globalThis as Dom).document.getElementById("error")?.hidden)).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, "playground-thumbnail-kept.png"), fullPage: true });
  });
});
