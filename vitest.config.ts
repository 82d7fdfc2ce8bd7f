import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type TestProjectConfiguration } from "vitest/config";

/**
 * Two test projects: everything that runs in Node (shared contract, scene
 * generator, GPU worker, integration tests in `test/`), and the edge Worker,
 * whose own config runs its tests inside workerd. The edge project joins only
 * once `edge/vitest.config.ts` exists, so `npm test` works before and after.
 */
const edgeConfig = "edge/vitest.config.ts";
const hasEdge = existsSync(fileURLToPath(new URL(edgeConfig, import.meta.url)));

const nodeProject: TestProjectConfiguration = {
  test: {
    name: "node",
    include: [
      "shared/**/*.test.ts",
      "scene-generator/**/*.test.ts",
      "gpu-worker/**/*.test.ts",
      "tools/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    environment: "node",
    testTimeout: 60_000,
  },
};

export default defineConfig({
  test: {
    projects: hasEdge ? [nodeProject, edgeConfig] : [nodeProject],
  },
});
