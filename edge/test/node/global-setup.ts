/**
 * Runs in Node before the workerd tests: starts the stub small function, the
 * fault listeners and (when gpu-worker/main.ts exists) the real function, and
 * provides their URLs to vitest.config.ts, which binds them into the Worker.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { freePort, startSilentServer } from "./listeners.js";
import { startRealFunction } from "./real-function.js";
import { startStubFunction } from "./stub-function.js";

export const TEST_SIGNING_SECRET = "test-signing-secret-0123456789abcdef";
/** The real Qwen2.5-VL fixture function's low-detail budget: 112 × 112 px, 16 visual tokens at most. */
export const QWEN_LOW_DETAIL_MAX_PIXELS = 12_544;
export const TEST_ADMIN_SECRET = "test-admin-secret-0123456789abcdef";

declare module "vitest" {
  export interface ProvidedContext {
    stubUrl: string;
    /** A second stub instance, for tests that change the pack versions it reports. */
    upgradeStubUrl: string;
    silentUrl: string;
    closedUrl: string;
    /** "" when gpu-worker/main.ts does not exist. */
    realFunctionUrl: string;
    /** Why the real function could not start ("" when it started or does not exist). */
    realFunctionError: string;
    /** The real function serving the tiny InternVL3 pack pair exported from transformers, and its start error. */
    realFamilyUrl: string;
    realFamilyError: string;
    /** The same with the tiny Qwen2.5-VL pair (smart_resize, M-RoPE). */
    realQwenUrl: string;
    realQwenError: string;
    /** A real photograph (JPEG, base64) for it: workerd cannot read the fixture folder itself. */
    familyPhotoBase64: string;
  }
}

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const fixturePair = (family: string) => ({
  STITCH_PACKS_DIR: `${ROOT}test/fixtures/packs`,
  STITCH_SMALL_PACK: `${family}-tiny-small`,
  STITCH_LARGE_PACK: `${family}-tiny-large`,
});

async function startOrError(secret: string, env?: Record<string, string>) {
  try {
    return { real: await startRealFunction(secret, env), error: "" };
  } catch (err) {
    return { real: null, error: String(err instanceof Error ? err.message : err) };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stub = await startStubFunction(TEST_SIGNING_SECRET);
  const upgradeStub = await startStubFunction(TEST_SIGNING_SECRET);
  const silent = await startSilentServer();
  const { real, error: realError } = await startOrError(TEST_SIGNING_SECRET);
  const { real: family, error: familyError } = await startOrError(TEST_SIGNING_SECRET, fixturePair("internvl3"));
  // The tiny Qwen2.5-VL pack's own max_pixels (62,720) is under the default low budget (448²), so low would read
  // what high reads: a lower budget, as a deployment may set it, makes the two levels differ on this pack.
  const { real: qwen, error: qwenError } = await startOrError(TEST_SIGNING_SECRET, {
    ...fixturePair("qwen25vl"),
    STITCH_LOW_DETAIL_MAX_PIXELS: String(QWEN_LOW_DETAIL_MAX_PIXELS),
  });
  project.provide("stubUrl", stub.url);
  project.provide("upgradeStubUrl", upgradeStub.url);
  project.provide("silentUrl", silent.url);
  project.provide("closedUrl", `http://127.0.0.1:${await freePort()}`);
  project.provide("realFunctionUrl", real?.url ?? "");
  project.provide("realFunctionError", realError);
  project.provide("realFamilyUrl", family?.url ?? "");
  project.provide("realFamilyError", familyError);
  project.provide("realQwenUrl", qwen?.url ?? "");
  project.provide("realQwenError", qwenError);
  project.provide("familyPhotoBase64", readFileSync(`${ROOT}test/fixtures/photos/chelsea.jpg`).toString("base64"));
  return async () => {
    await real?.stop();
    await family?.stop();
    await qwen?.stop();
    await silent.close();
    for (const { server } of [stub, upgradeStub]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  };
}
