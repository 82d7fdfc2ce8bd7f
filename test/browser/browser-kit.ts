import { type Browser, chromium, type Page } from "playwright-core";

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
