/**
 * Edge tests run inside workerd (@cloudflare/vitest-pool-workers) with the
 * Worker's real bindings from ../wrangler.toml: local D1 (migrations applied in
 * test/apply-migrations.ts), the rate limiter Durable Object and the Cache API.
 * The small function is real HTTP: a stub started in Node (test/node/global-setup.ts).
 */
import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineProject } from "vitest/config";
import { TEST_ADMIN_SECRET, TEST_SIGNING_SECRET } from "./test/node/global-setup.js";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineProject(async () => {
  const migrations = await readD1Migrations(here("../infra/migrations"));
  return {
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: here("../wrangler.toml") },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            TEST_STUB_URL: inject("stubUrl"),
            TEST_UPGRADE_STUB_URL: inject("upgradeStubUrl"),
            TEST_SILENT_URL: inject("silentUrl"),
            TEST_CLOSED_URL: inject("closedUrl"),
            TEST_REAL_FUNCTION_URL: inject("realFunctionUrl"),
            TEST_REAL_FUNCTION_ERROR: inject("realFunctionError"),
            TEST_REAL_FAMILY_URL: inject("realFamilyUrl"),
            TEST_REAL_FAMILY_ERROR: inject("realFamilyError"),
            TEST_REAL_QWEN_URL: inject("realQwenUrl"),
            TEST_REAL_QWEN_ERROR: inject("realQwenError"),
            TEST_FAMILY_PHOTO_BASE64: inject("familyPhotoBase64"),
            SMALL_FUNCTION_URL: `${inject("stubUrl")}/s/ok`,
            INTERNAL_SIGNING_SECRET: TEST_SIGNING_SECRET,
            ADMIN_SECRET: TEST_ADMIN_SECRET,
            // The tests hand each request's usage records to the consumer themselves (helpers.ts's edge()), or run
            // a key's flush with runDurableObjectAlarm: an alarm of its own would race them.
            USAGE_FLUSH_DELAY_MS: "600000",
          },
        },
      })),
    ],
    test: {
      name: "edge",
      root: here("."),
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      globalSetup: [here("test/node/global-setup.ts")],
      setupFiles: [here("test/apply-migrations.ts")],
      testTimeout: 20_000,
    },
  };
});
