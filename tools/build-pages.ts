/**
 * Builds the edge's two browser pages (/playground, /dashboard) into edge/pages/dist/, which wrangler.toml serves as the
 * Worker's static assets: each page's TypeScript is bundled by esbuild (minified, ES2022, no CDN: Chart.js is bundled
 * into the dashboard), its HTML and the shared stylesheet are copied, and `_headers` sets a strict CSP
 * (`connect-src 'self'`: the pages can talk to this API only).
 *
 *   npm run build:pages           # once (npm start, the tests and `wrangler deploy` run it)
 *
 * `buildPages()` is the same as a function, for the local stack and the tests' global setup.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const PAGES_SRC = path.join(ROOT, "edge/pages/src");
/** Served as static assets (wrangler.toml `[assets]`); git-ignored. */
export const PAGES_DIST = path.join(ROOT, "edge/pages/dist");
export const PAGES = ["playground", "dashboard"] as const;

export interface PageWeight {
  page: string;
  /** Bytes of the HTML, the page's script and the stylesheet, uncompressed. */
  bytes: number;
  files: Record<string, number>;
}

/** Writes through a temporary file and a rename, so a server reading the folder never sees half a file. */
function writeAtomic(file: string, contents: Uint8Array | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

/**
 * Builds into `outDir` in place (no emptying first): two local stacks starting at once (the end-to-end and the
 * browser tests) both run it through wrangler dev's [build], and each must keep serving whole files.
 */
export async function buildPages(outDir: string = PAGES_DIST): Promise<PageWeight[]> {
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: PAGES.map((page) => path.join(PAGES_SRC, `${page}.ts`)),
    outdir: outDir,
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    legalComments: "none",
    logLevel: "warning",
    write: false,
  });
  for (const file of result.outputFiles) writeAtomic(file.path, file.contents);
  for (const file of readdirSync(PAGES_SRC)) {
    if (file.endsWith(".html") || file.endsWith(".css") || file === "_headers")
      writeAtomic(path.join(outDir, file), readFileSync(path.join(PAGES_SRC, file)));
  }
  return PAGES.map((page) => {
    const files = Object.fromEntries(
      [`${page}.html`, `${page}.js`, "pages.css"].map((file) => [file, statSync(path.join(outDir, file)).size]),
    );
    return { page, bytes: Object.values(files).reduce((a, b) => a + b, 0), files };
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildPages().then(
    (weights) => {
      for (const w of weights) console.log(`/${w.page}: ${w.bytes} bytes (${JSON.stringify(w.files)})`);
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
