/**
 * Bundles the GPU functions (gpu-worker/main.ts and everything it imports from this repository) into one ES module,
 * dist/worker.mjs, that plain `node` runs: the container's entry command, with no TypeScript runner at run time.
 * npm packages stay outside the bundle (native ones like onnxruntime-node and sharp cannot be bundled) and are loaded
 * from `node_modules` as installed by `npm ci --omit=dev`; the build fails if the bundle imports a package that is not
 * a production dependency, so a dev dependency can never be needed at run time.
 *
 *   npm run build:worker          # → dist/worker.mjs (+ .map); STITCH_ROLE etc. as for serve:*
 *   node --enable-source-maps dist/worker.mjs
 */
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const WORKER_ENTRY = path.join(ROOT, "gpu-worker/main.ts");
export const WORKER_BUNDLE = path.join(ROOT, "dist/worker.mjs");

/** The package a bare import names: `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string);
}

export interface WorkerBuild {
  outfile: string;
  /** npm packages the bundle imports at run time. */
  packages: string[];
  /** Repository files bundled in (relative to the root): the Dockerfile's build stage must copy them all. */
  inputs: string[];
}

export async function buildWorker(outfile: string = WORKER_BUNDLE): Promise<WorkerBuild> {
  const result = await build({
    entryPoints: [WORKER_ENTRY],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    packages: "external",
    sourcemap: true,
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
  });
  const output = result.metafile.outputs[path.relative(process.cwd(), outfile)];
  const imports = output?.imports ?? Object.values(result.metafile.outputs).flatMap((o) => o.imports);
  const builtins = new Set(builtinModules);
  const packages = [
    ...new Set(
      imports
        .filter((i) => i.external && !i.path.startsWith("node:") && !builtins.has(i.path))
        .map((i) => packageOf(i.path)),
    ),
  ].sort();
  const manifest = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  const production = new Set(Object.keys(manifest.dependencies ?? {}));
  const missing = packages.filter((p) => !production.has(p));
  if (missing.length > 0) {
    throw new Error(`dist/worker.mjs imports packages that are not production dependencies: ${missing.join(", ")}`);
  }
  const inputs = Object.keys(result.metafile.inputs)
    .map((i) => path.relative(ROOT, path.resolve(i)))
    .sort();
  return { outfile, packages, inputs };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { outfile, packages } = await buildWorker();
  console.log(`${path.relative(ROOT, outfile)}: imports ${packages.join(", ")} (all production dependencies)`);
}
