/**
 * Runs in Node before the workerd tests: starts the stub small function, the
 * fault listeners and (when gpu-worker/main.ts exists) the real function, and
 * provides their URLs to vitest.config.ts, which binds them into the Worker.
 */
import type { TestProject } from "vitest/node";
import { freePort, startSilentServer } from "./listeners.js";
import { startRealFunction } from "./real-function.js";
import { startStubFunction } from "./stub-function.js";

export const TEST_SIGNING_SECRET = "test-signing-secret-0123456789abcdef";
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
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stub = await startStubFunction(TEST_SIGNING_SECRET);
  const upgradeStub = await startStubFunction(TEST_SIGNING_SECRET);
  const silent = await startSilentServer();
  let real: Awaited<ReturnType<typeof startRealFunction>> = null;
  let realError = "";
  try {
    real = await startRealFunction(TEST_SIGNING_SECRET);
  } catch (err) {
    realError = String(err instanceof Error ? err.message : err);
  }
  project.provide("stubUrl", stub.url);
  project.provide("upgradeStubUrl", upgradeStub.url);
  project.provide("silentUrl", silent.url);
  project.provide("closedUrl", `http://127.0.0.1:${await freePort()}`);
  project.provide("realFunctionUrl", real?.url ?? "");
  project.provide("realFunctionError", realError);
  return async () => {
    await real?.stop();
    await silent.close();
    for (const { server } of [stub, upgradeStub]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  };
}
