import { defineConfig, type TestProjectConfiguration } from "vitest/config";

/**
 * Two test projects: everything that runs in Node (shared contract, scene
 * generator, GPU worker, the benchmarks' helpers behind their published verdicts,
 * integration tests in `test/`), and the edge Worker, whose own config runs its
 * tests inside workerd.
 */

const nodeProject: TestProjectConfiguration = {
  test: {
    name: "node",
    include: [
      "shared/**/*.test.ts",
      "scene-generator/**/*.test.ts",
      "gpu-worker/**/*.test.ts",
      "tools/**/*.test.ts",
      "bench/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    environment: "node",
    testTimeout: 60_000,
  },
};

export default defineConfig({
  test: {
    projects: [nodeProject, "edge/vitest.config.ts"],
  },
});
