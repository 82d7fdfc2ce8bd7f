import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** The benchmarks' own helper tests, outside the default `npm test`: `npx vitest run --config bench/vitest.config.ts`. */
export default defineConfig({
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: { name: "bench", include: ["bench/**/*.test.ts"], environment: "node" },
});
