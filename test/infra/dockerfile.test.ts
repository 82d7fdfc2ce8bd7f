/**
 * infra/Dockerfile against the repository (no Docker engine here; hadolint lints it in .ci/run): every file it copies
 * from the context exists and is let through by .dockerignore, the build stage copies every source file the worker
 * bundle is made of, and the runtime stages run the bundle as a non-root user on the port the manifests use.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildWorker } from "../../tools/build-worker.js";

const dockerfile = readFileSync("infra/Dockerfile", "utf8").replace(/\\\n/g, " ");
const lines = dockerfile.split("\n").map((l) => l.trim());
const copies = lines
  .filter((l) => l.startsWith("COPY ") && !l.includes("--from="))
  .flatMap((l) => l.split(/\s+/).slice(1, -1))
  .map((s) => s.replace(/\/$/, ""))
  .filter((s) => !s.includes("$"));

describe("infra/Dockerfile", () => {
  it("copies only files that exist and that .dockerignore lets through", () => {
    const ignore = readFileSync(".dockerignore", "utf8").split("\n");
    const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    expect(copies.length).toBeGreaterThan(0);
    for (const src of copies) {
      expect(existsSync(src), src).toBe(true);
      expect(allowed, src).toContain(src);
    }
    expect(ignore).toContain("**"); // everything else stays out of the context
    expect(allowed).toContain("model-packs"); // the default PACKS
  });

  it("its build stage copies every file the bundle is built from", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stitch-bundle-"));
    try {
      const { inputs, packages } = await buildWorker(join(dir, "worker.mjs"));
      for (const input of inputs)
        expect(
          copies.some((c) => input === c || input.startsWith(`${c}/`)),
          input,
        ).toBe(true);
      expect(packages).toContain("onnxruntime-node");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("runs the bundle with node, as a non-root user, listening on 0.0.0.0:8080, in both runtimes", () => {
    const stages = dockerfile.split(/^FROM /m).slice(1);
    const runtime = stages.filter((s) => / AS (cpu|gpu)\n/.test(s));
    expect(runtime).toHaveLength(2);
    for (const stage of runtime) {
      expect(stage).toMatch(/^ENTRYPOINT \["node", "--enable-source-maps", "dist\/worker\.mjs"\]$/m);
      expect(stage).toMatch(/^USER (?!0\b|root\b)\S+$/m);
      expect(stage).toMatch(/HOST=0\.0\.0\.0/);
      expect(stage).toMatch(/PORT=8080/);
      expect(stage).toMatch(/NODE_ENV=production/);
    }
    expect(runtime.find((s) => / AS gpu\n/.test(s))).toMatch(/STITCH_EXECUTION_PROVIDERS=cuda,cpu/);
    expect(runtime.find((s) => / AS cpu\n/.test(s))).toMatch(/STITCH_EXECUTION_PROVIDERS=cpu/);
    // The default target (the last stage) is the GPU image.
    expect(stages.at(-1)).toMatch(/ AS gpu\n/);
  });

  it("pins the CUDA provider to the onnxruntime-node version the lockfile installs", () => {
    const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
    const version = lock.packages["node_modules/onnxruntime-node"].version;
    expect(dockerfile).toMatch(new RegExp(`^ARG ORT_VERSION=${version.replace(/\./g, "\\.")}$`, "m"));
    expect(dockerfile).toMatch(/microsoft\.ml\.onnxruntime\.gpu\.linux/);
    expect(dockerfile).toMatch(/^ARG CUDA_IMAGE=nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev --ignore-scripts/);
  });
});
