/** The local stack's supervisor with real child processes: a killed function is restarted, bounded; then it gives up. */
import { afterEach, describe, expect, it } from "vitest";
import { Processes } from "./start-local-stack.processes.js";

const SERVER = "console.log('listening'); console.error('serving on ' + process.pid); setInterval(() => {}, 1000);";
const until = async (check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
};

let processes: Processes | undefined;
afterEach(async () => {
  await processes?.stopAll();
});

describe("local stack supervisor", () => {
  it("restarts a killed function with backoff, then stops naming the process, its signal and its last lines", async () => {
    const lines: string[] = [];
    processes = new Processes(process.cwd(), (line) => lines.push(line));
    processes.start("small", process.execPath, ["-e", SERVER], {}, { maxRestarts: 2, windowMs: 60_000, backoffMs: 50 });
    let gaveUp: string | undefined;
    void processes.crashed.then((message) => {
      gaveUp = message;
    });
    for (let kill = 1; kill <= 2; kill++) {
      await until(() => lines.filter((l) => l === "[small] listening").length === kill);
      const pid = processes.pid("small") as number;
      process.kill(pid, "SIGKILL");
      await until(() => processes?.pid("small") !== pid);
      expect(
        lines.some((l) =>
          l.startsWith(`[stack] small (pid ${pid}) was killed by SIGKILL; restarting it in ${50 * 2 ** (kill - 1)} ms`),
        ),
      ).toBe(true);
    }
    await until(() => lines.filter((l) => l === "[small] listening").length === 3);
    const last = processes.pid("small") as number;
    process.kill(last, "SIGKILL");
    await until(() => gaveUp !== undefined);
    expect(gaveUp).toContain(`small (pid ${last}) was killed by SIGKILL, and it was restarted 2 times`);
    expect(gaveUp).toContain(`serving on ${last}`);
  });

  it("a process without a restart policy (the edge) stops the stack with its exit code", async () => {
    processes = new Processes(process.cwd(), () => {});
    processes.start("edge", process.execPath, ["-e", "console.error('port in use'); process.exit(3)"], {});
    const message = await processes.crashed;
    expect(message).toMatch(/^edge \(pid \d+\) exited with code 3\. Its last log lines:\nport in use$/);
  });
});
