/**
 * Starts the real GPU function (gpu-worker/main.ts, role both) on a free port
 * when it exists, and waits for /readyz. Returns null when the file is missing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort } from "./listeners.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const REAL_FUNCTION_ENTRY = `${ROOT}gpu-worker/main.ts`;

export interface RealFunction {
  url: string;
  stop: () => Promise<void>;
}

/** `env` picks the pack pair (STITCH_PACKS_DIR, STITCH_SMALL_PACK, STITCH_LARGE_PACK); default: the embedded one. */
export async function startRealFunction(
  secret: string,
  env: Record<string, string> = {},
  readyTimeoutMs = 180_000,
): Promise<RealFunction | null> {
  if (!existsSync(REAL_FUNCTION_ENTRY)) return null;
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", REAL_FUNCTION_ENTRY], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      STITCH_ROLE: "both",
      PORT: String(port),
      // Any free port: several of these run at once, and the tests never read their /metrics.
      METRICS_PORT: "0",
      STITCH_SIGNING_SECRET: secret,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gpu-worker/main.ts exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { url, stop };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await stop();
  throw new Error(`gpu-worker/main.ts was not ready within ${readyTimeoutMs} ms:\n${output}`);
}
