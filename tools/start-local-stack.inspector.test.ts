import { describe, expect, it } from "vitest";
import { disableNetworkEvents, isRuntimeReload } from "./start-local-stack.inspector.js";
import { freePort } from "./start-local-stack.processes.js";

// The command reaching a real runtime is tested end to end (test/e2e/local-stack.test.ts); here, that a missing
// inspector never stops the stack.
describe("disableNetworkEvents", () => {
  it("reports, without throwing, when nothing listens on the inspector port", async () => {
    const outcome = await disableNetworkEvents(await freePort());
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.reason).toMatch(/fetch failed|ECONNREFUSED/);
  });
});

describe("isRuntimeReload", () => {
  it("knows wrangler dev's line for a finished reload, not the one for its start", () => {
    expect(isRuntimeReload("[edge] ⎔ Local server updated and ready")).toBe(true);
    expect(isRuntimeReload("[edge] ⎔ Reloading local server...")).toBe(false);
  });
});
