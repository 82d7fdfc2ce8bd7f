/**
 * Execution providers at start-up: which provider ran each graph is logged and in /metrics, and a requested provider
 * that cannot load (here `cuda`: this machine has neither a GPU nor onnxruntime's CUDA provider library) keeps
 * /readyz at 503 and makes main.ts exit 1 with a line naming the provider; it never serves on the CPU instead.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../gpu-worker/http/logger.js";
import { startWorker } from "../../gpu-worker/start-worker.js";
import { startTestWorker, type TestWorker, testConfig } from "./harness.js";

const run = promisify(execFile);

describe("execution providers", () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({ STITCH_ROLE: "both", STITCH_EXECUTION_PROVIDERS: "cpu" });
  });
  afterAll(async () => {
    await worker?.close();
  });

  it("logs, per model and graph, the nodes each provider ran in the warm-up", () => {
    const lines = worker.logs.filter((l) => l.msg === "execution providers");
    expect(lines.map((l) => l.model).sort()).toEqual(["large", "small"]);
    for (const line of lines) {
      expect(line.requested).toEqual(["cpu"]);
      const graphs = Object.values(line.graphs as Record<string, Record<string, number>>);
      expect(graphs.length).toBeGreaterThanOrEqual(3); // vision, embed, one or more decoder segments
      for (const g of graphs) expect(g.CPUExecutionProvider).toBeGreaterThan(0);
    }
  });

  it("exports them in /metrics", async () => {
    const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
    expect(text).toMatch(
      /^stitch_execution_provider_nodes\{model="small",graph="[^"]+\.onnx",provider="CPUExecutionProvider"\} [1-9]\d*$/m,
    );
    expect(text).toMatch(/^stitch_execution_providers_requested\{model="large",providers="cpu"\} 1$/m);
  });

  it("a provider that cannot load: ready rejects naming it, /readyz stays 503", async () => {
    const logs: string[] = [];
    const failing = await startWorker(testConfig({ STITCH_ROLE: "both", STITCH_EXECUTION_PROVIDERS: "cuda,cpu" }), {
      logger: createLogger({ write: (l) => logs.push(l) }),
      defaultMetrics: false,
    });
    try {
      await expect(failing.ready).rejects.toThrow(
        /could not create a session for \S+\.onnx with execution providers cuda,cpu: .*no fallback to the CPU/s,
      );
      expect((await fetch(`${failing.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${failing.url}/readyz`)).status).toBe(503);
      expect(await (await fetch(`${failing.metricsUrl}/metrics`)).text()).not.toMatch(
        /^stitch_execution_provider_nodes\{/m,
      );
    } finally {
      await failing.close();
    }
  });

  it("main.ts exits 1 with a clear line", async () => {
    const result = await run(process.execPath, ["--import", "tsx", "gpu-worker/main.ts"], {
      env: { ...process.env, PORT: "0", METRICS_PORT: "0", STITCH_ROLE: "large", STITCH_EXECUTION_PROVIDERS: "cuda" },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stdout: "" }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(result.code).toBe(1);
    const line = result.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === "engines failed to load; exiting");
    expect(line?.level).toBe("error");
    expect(line?.error?.name).toBe("ExecutionProviderError");
    expect(line?.error?.message).toMatch(/execution providers cuda: .*Cuda.*no fallback to the CPU/s);
  });
});
