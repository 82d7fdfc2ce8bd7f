import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("loadConfig", () => {
  it("has working defaults for local use", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      role: "both",
      host: "127.0.0.1",
      port: 8701,
      largeUrl: "http://127.0.0.1:8702",
      signingSecret: "stitch-dev-secret",
      signatureWindowS: 60,
      maxConcurrency: 1,
      maxQueue: 8,
      requestTimeoutMs: 30_000,
      largeTimeoutMs: 20_000,
      maxImageBytes: 4 * 1024 * 1024,
      maxImagePixels: 4096 * 4096,
      gpuClass: "cpu",
      executionProviders: ["cpu"],
      visionCacheBytes: 64 * 1024 * 1024,
      exit: {},
    });
    expect(c.smallPackDir).toMatch(/model-packs\/stitch-scenes-small$/);
    expect(c.defaultRetention).toBeUndefined();
  });

  it("reads STITCH_MAX_MODEL_MB as a byte budget for the weights; unset: no limit", () => {
    expect(loadConfig({}).maxModelBytes).toBeUndefined();
    expect(loadConfig({ STITCH_MAX_MODEL_MB: "1536" }).maxModelBytes).toBe(1536 * 1024 * 1024);
    expect(() => loadConfig({ STITCH_MAX_MODEL_MB: "0" })).toThrow(/STITCH_MAX_MODEL_MB/);
  });

  it("the large role listens on 8702; PORT overrides", () => {
    expect(loadConfig({ STITCH_ROLE: "large" }).port).toBe(8702);
    expect(loadConfig({ STITCH_ROLE: "large", PORT: "9000" }).port).toBe(9000);
  });

  it("serves /metrics on a loopback port of its own (9701, large 9702); METRICS_HOST and METRICS_PORT override", () => {
    expect(loadConfig({})).toMatchObject({ metricsHost: "127.0.0.1", metricsPort: 9701 });
    expect(loadConfig({ STITCH_ROLE: "large" }).metricsPort).toBe(9702);
    const c = loadConfig({ HOST: "0.0.0.0", METRICS_HOST: "10.0.0.5", METRICS_PORT: "9090" });
    expect(c).toMatchObject({ host: "0.0.0.0", metricsHost: "10.0.0.5", metricsPort: 9090 });
  });

  it("reads and coerces every knob; empty means default", () => {
    const c = loadConfig({
      STITCH_MAX_CONCURRENCY: "4",
      STITCH_EXIT_THRESHOLD: "0.7",
      STITCH_EXIT_RULE: "geometric",
      STITCH_DEFAULT_RETENTION: "0.09",
      STITCH_DEFAULT_PRUNE_LAYER: "2",
      STITCH_VISION_CACHE_MB: "0.5",
      STITCH_EXECUTION_PROVIDERS: "cuda,cpu",
      STITCH_THREADS: "",
    });
    expect(c).toMatchObject({
      maxConcurrency: 4,
      exit: { threshold: 0.7, rule: "geometric" },
      defaultRetention: 0.09,
      defaultPruneLayer: 2,
      visionCacheBytes: 512 * 1024,
      executionProviders: ["cuda", "cpu"],
      threads: 1,
    });
  });

  it.each([
    [{ STITCH_ROLE: "medium" }, /STITCH_ROLE/],
    [{ PORT: "http" }, /PORT/],
    [{ STITCH_MAX_CONCURRENCY: "0" }, /STITCH_MAX_CONCURRENCY/],
    [{ STITCH_DEFAULT_RETENTION: "0" }, /STITCH_DEFAULT_RETENTION/],
    [{ STITCH_EXIT_THRESHOLD: "1.5" }, /STITCH_EXIT_THRESHOLD/],
    [{ STITCH_LARGE_URL: "ftp://x" }, /STITCH_LARGE_URL/],
    [{ STITCH_LARGE_TIMEOUT_MS: "40000" }, /STITCH_LARGE_TIMEOUT_MS/],
    [{ NODE_ENV: "production" }, /STITCH_SIGNING_SECRET/],
    [{ NODE_ENV: "production", STITCH_SIGNING_SECRET: "stitch-dev-secret" }, /STITCH_SIGNING_SECRET/],
  ])("refuses %j", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("accepts a real secret in production", () => {
    expect(loadConfig({ NODE_ENV: "production", STITCH_SIGNING_SECRET: "s3cr3t-from-the-vault" }).signingSecret).toBe(
      "s3cr3t-from-the-vault",
    );
  });
});
