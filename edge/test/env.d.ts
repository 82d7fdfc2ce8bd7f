import type { D1Migration } from "cloudflare:test";
import type { Env } from "../src/bindings.js";

declare global {
  namespace Cloudflare {
    interface Env extends StitchEnv {
      TEST_MIGRATIONS: D1Migration[];
      TEST_STUB_URL: string;
      TEST_UPGRADE_STUB_URL: string;
      TEST_SILENT_URL: string;
      TEST_CLOSED_URL: string;
      /** "" when gpu-worker/main.ts does not exist. */
      TEST_REAL_FUNCTION_URL: string;
      TEST_REAL_FUNCTION_ERROR: string;
      TEST_REAL_FAMILY_URL: string;
      TEST_REAL_FAMILY_ERROR: string;
      TEST_REAL_QWEN_URL: string;
      TEST_REAL_QWEN_ERROR: string;
      TEST_FAMILY_PHOTO_BASE64: string;
    }
  }
  type StitchEnv = Env;
}
