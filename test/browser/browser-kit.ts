import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type LocalStack, startLocalStack } from "../../tools/start-local-stack.js";
import { freePort } from "../../tools/start-local-stack.processes.js";

export { freePort };

/** Where the browser tests leave their screenshots (and the pages' measured figures). */
export const SHOTS = path.resolve(import.meta.dirname, "screenshots");

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

export interface StackInBrowser {
  stack: LocalStack;
  browser: Browser;
  page: Page;
  /** Stops the browser and the stack and removes their state. */
  close(): Promise<void>;
}

/**
 * The local stack `npm start` runs (on free ports, its state in a temporary directory) and Chromium, started side by
 * side, with one page open; both write their lines to `output`. Without Chromium this fails: `.ci/run` installs it.
 */
export async function startStackInBrowser(
  output: string[],
  page: { acceptDownloads?: boolean } = {},
): Promise<StackInBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: run 'apt-get update && apt-get install -y chromium' (.ci/run does)`,
    );
  }
  mkdirSync(SHOTS, { recursive: true });
  const workDir = mkdtempSync(path.join(tmpdir(), "stitch-browser-"));
  const [edgePort, smallPort, largePort] = [await freePort(), await freePort(), await freePort()];
  const [stack, browser] = await Promise.all([
    startLocalStack({
      edgePort,
      smallPort,
      largePort,
      persistTo: path.join(workDir, "state"),
      devVarsPath: path.join(workDir, "dev.vars"),
      examplesDir: path.join(workDir, "examples"),
      log: (line) => output.push(line),
    }),
    launchChromium(),
  ]);
  const opened = await browser.newPage({ viewport: { width: 1100, height: 1000 }, ...page });
  opened.on("pageerror", (err) => output.push(`[page error] ${err.message}`));
  return {
    stack,
    browser,
    page: opened,
    async close() {
      await browser.close();
      await stack.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
