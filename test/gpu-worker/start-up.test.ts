/**
 * Start-up: readiness only after the engines are warm, and a clear refusal
 * (exit 1 from main.ts) of a mismatched pack pair or bad configuration.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../gpu-worker/http/logger.js";
import { startWorker } from "../../gpu-worker/start-worker.js";
import { PACKS_DIR, testConfig } from "./harness.js";

const run = promisify(execFile);
let mismatched: string;

beforeAll(async () => {
  // A copy of the pair whose large pack cuts images into another grid (visual token i would not mean region i).
  mismatched = await mkdtemp(join(tmpdir(), "stitch-packs-"));
  await cp(PACKS_DIR, mismatched, { recursive: true });
  const file = join(mismatched, "stitch-scenes-large", "manifest.json");
  const manifest = JSON.parse(await readFile(file, "utf8"));
  await writeFile(file, JSON.stringify({ ...manifest, image: { ...manifest.image, grid: { rows: 4, cols: 16 } } }));
});
afterAll(async () => {
  await rm(mismatched, { recursive: true, force: true });
});

/** Runs main.ts as `npm run serve:*` would, expecting it to exit by itself. */
async function mainExit(env: Record<string, string>) {
  try {
    await run(process.execPath, ["--import", "tsx", "gpu-worker/main.ts"], {
      env: { ...process.env, PORT: "0", METRICS_PORT: "0", ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout: "" };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe("start-up", () => {
  it("a mismatched pair: ready rejects with a clear error and /readyz stays 503", async () => {
    const logs: string[] = [];
    const worker = await startWorker(testConfig({ STITCH_ROLE: "both", STITCH_PACKS_DIR: mismatched }), {
      logger: createLogger({ write: (l) => logs.push(l) }),
      defaultMetrics: false,
    });
    try {
      await expect(worker.ready).rejects.toThrow(
        /cut images differently \(grid\): grid is \{"rows":8,"cols":8\} vs \{"rows":4,"cols":16\}/,
      );
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
      const res = await fetch(`${worker.url}/readyz`);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
    } finally {
      await worker.close();
    }
  });

  it("main.ts exits 1 on a mismatched pair, naming the problem", async () => {
    const { code, stdout } = await mainExit({ STITCH_ROLE: "small", STITCH_PACKS_DIR: mismatched });
    expect(code).toBe(1);
    expect(stdout).toMatch(/cut images differently/);
  });

  it("main.ts exits 1 on bad configuration", async () => {
    const { code, stdout } = await mainExit({ STITCH_ROLE: "medium" });
    expect(code).toBe(1);
    expect(stdout).toMatch(/STITCH_ROLE/);
  });

  it("serve:both comes up ready and drains on SIGTERM, exiting 0", async () => {
    // The script's command without npm in between: npm itself does not wait for its child on SIGTERM.
    const child = spawn("node_modules/.bin/tsx", ["gpu-worker/main.ts"], {
      env: { ...process.env, STITCH_ROLE: "both", PORT: "0", METRICS_PORT: "0", STITCH_THREADS: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const lines: Record<string, unknown>[] = [];
    let buffer = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) if (line.startsWith("{")) lines.push(JSON.parse(line));
    });
    try {
      await expect.poll(() => lines.some((l) => l.msg === "ready"), { timeout: 30_000, interval: 100 }).toBe(true);
      const url = lines.find((l) => l.msg === "listening")?.url as string;
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      child.kill("SIGTERM"); // tsx relays it to the node process running main.ts
      const [code] = await once(child, "exit");
      expect(code).toBe(0);
      expect(lines.some((l) => l.msg === "shutting down")).toBe(true);
      expect(lines.some((l) => l.msg === "closed")).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
