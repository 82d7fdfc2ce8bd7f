import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "../../tools/start-local-stack.js";
import { freePort } from "../../tools/start-local-stack.processes.js";

export { freePort } from "../../tools/start-local-stack.processes.js";

export const CHROMIUM = "/usr/bin/chromium";

/** Debian's Chromium (Playwright's own browser download cannot be reached here), with the flags it needs here. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** What the page-side callbacks see (they run in the browser; this project's Node tsconfig has no DOM types). */
// biome-ignore lint/suspicious/noExplicitAny: DOM values inside page.evaluate callbacks
export type Dom = any;

/** Non-transparent pixels on a canvas. */
export const paintedPixels = (page: Page, selector: string) =>
  page.$eval(selector, (c: Dom) => {
    const data: Uint8ClampedArray =
      c.getContext("2d")?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) n++;
    return n;
  });

export interface PagesStack {
  stack: LocalStack;
  browser: Browser;
  page: Page;
  /** Every line the stack printed, and the page's errors as `[page error] …`. */
  output: string[];
  /** The stack's secrets file (ADMIN_SECRET, INTERNAL_SIGNING_SECRET). */
  devVarsPath: string;
  stop(): Promise<void>;
}

/** The local stack on free ports in a folder of its own, and Chromium with one page, started together. */
export async function startPagesStack(
  options: Pick<LocalStackOptions, "edgeVars" | "functionEnv"> & { viewport?: { width: number; height: number } } = {},
): Promise<PagesStack> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM} (.ci/run installs it)`);
  const workDir = mkdtempSync(path.join(tmpdir(), "stitch-browser-"));
  const devVarsPath = path.join(workDir, "dev.vars");
  const output: string[] = [];
  const [stack, browser] = await Promise.all([
    startLocalStack({
      edgePort: await freePort(),
      smallPort: await freePort(),
      largePort: await freePort(),
      persistTo: path.join(workDir, "state"),
      devVarsPath,
      examplesDir: path.join(workDir, "examples"),
      log: (line) => output.push(line),
      ...(options.edgeVars && { edgeVars: options.edgeVars }),
      ...(options.functionEnv && { functionEnv: options.functionEnv }),
    }),
    launchChromium(),
  ]);
  const page = await browser.newPage({ viewport: options.viewport ?? { width: 1100, height: 1000 } });
  page.on("pageerror", (err) => output.push(`[page error] ${err.message}`));
  return {
    stack,
    browser,
    page,
    output,
    devVarsPath,
    async stop() {
      await browser.close();
      await stack.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
