/**
 * The dashboard's shadow escalation panel in a real headless Chromium, against the real local stack (startLocalStack
 * on free ports) with every stitch-sgl decision sampled (STITCH_SHADOW_RATE=1) and an operator target: after a few
 * answers the panel, given the admin secret, must show what GET /admin/shadow reports (samples, threshold,
 * calibration, the band table), and refuse a wrong secret. Without Chromium this fails (it does not skip).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatAboutPng } from "../../bench/serve-requests.js";
import { encodePng, generateItem } from "../../scene-generator/index.js";
import type { ShadowReport } from "../../shared/index.js";
import type { LocalStack } from "../../tools/start-local-stack.js";
import { type Dom, SHOTS, type StackInBrowser, startStackInBrowser } from "./browser-kit.js";

const ASKED = 8;

describe("the dashboard's shadow escalation panel in Chromium", () => {
  let started: StackInBrowser;
  let stack: LocalStack;
  let page: Page;
  let adminSecret: string;
  const output: string[] = [];

  beforeAll(async () => {
    started = await startStackInBrowser(
      output,
      { viewport: { width: 1100, height: 1400 } },
      {
        edgeVars: { SHADOW_TARGET: "0.05", SHADOW_MIN_SAMPLES: "5", SHADOW_REFRESH_MS: "0" },
        functionEnv: { small: { STITCH_SHADOW_RATE: "1" } },
      },
    );
    ({ stack, page } = started);
    adminSecret = /^ADMIN_SECRET=(.+)$/m.exec(readFileSync(started.devVarsPath, "utf8"))?.[1] ?? "";
  }, 240_000);

  afterAll(() => started?.close(), 60_000);

  async function report(): Promise<ShadowReport> {
    const res = await fetch(`${stack.edgeUrl}/admin/shadow`, { headers: { authorization: `Bearer ${adminSecret}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as ShadowReport;
  }

  async function sampled(count: number): Promise<void> {
    for (let i = 0; i < 200 && (await report()).samples < count; i++) await new Promise((r) => setTimeout(r, 50));
  }

  it("shows the samples, the threshold, its calibration and agreement by band as /admin/shadow reports them", async () => {
    for (let i = 0; i < ASKED; i++) {
      const item = generateItem(3131, i);
      const png = Buffer.from(encodePng(item.rgb, item.side)).toString("base64");
      const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
        body: chatAboutPng(png, item.questions[0]?.question ?? "", { stitch: { cache: { bypass: true } } }),
      });
      expect(res.status, output.slice(-20).join("\n")).toBe(200);
      // One at a time: a shadow runs only on an idle large function, so the next answer waits for this one's sample.
      await sampled(i + 1);
    }
    const shown = await report();
    // Each answer is sampled (shadowed or escalated); a sample may still be lost on a loaded machine (a report to the
    // edge timing out is dropped by design), so at least the minimum, and at most one per answer.
    expect(shown.samples).toBeGreaterThanOrEqual(5);
    expect(shown.samples).toBeLessThanOrEqual(ASKED);

    await page.goto(`${stack.edgeUrl}/dashboard`);
    await page.fill("#admin-secret", adminSecret);
    await page.click("#shadow-load");
    await page.waitForSelector("#shadow-result:not([hidden])");
    // One deployment, one pack pair: the real function's, as its samples name it.
    expect(shown.pairs).toEqual([{ pair: shown.pair, samples: shown.samples, threshold: shown.threshold }]);
    expect(await page.textContent("#sh-pair")).toBe(shown.pair);
    expect(await page.textContent("#sh-samples")).toBe(`${shown.samples} (minimum 5)`);
    expect(await page.textContent("#sh-calibration")).toBe(shown.calibration);
    expect(shown.calibration).toMatch(new RegExp(`^shadow:${shown.samples}@\\d+/0\\.05$`));
    expect(await page.textContent("#sh-target")).toBe("5.00%");
    const bands = await page.$$eval("#shadow-bands tbody tr", (rows) =>
      (rows as Dom[]).map((r) => Array.from(r.cells as Dom[], (c: Dom) => c.textContent as string)),
    );
    expect(bands).toHaveLength(10);
    expect(bands.map((b) => Number(b[1]))).toEqual(shown.bands.map((b) => b.samples));
    await page.screenshot({ path: path.join(SHOTS, "dashboard-shadow.png"), fullPage: true });
    expect(output.filter((l) => l.startsWith("[page error]"))).toEqual([]);
  });

  it("shows the API's error for a wrong secret", async () => {
    await page.goto(`${stack.edgeUrl}/dashboard`);
    await page.fill("#admin-secret", "not-the-admin-secret-0000");
    await page.click("#shadow-load");
    await page.waitForSelector("#shadow-error:not([hidden])");
    expect(await page.textContent("#shadow-error")).toMatch(/invalid_admin_secret/);
    expect(await page.isHidden("#shadow-result")).toBe(true);
  });
});
