/** The local stack's child processes: started with prefixed output, awaited until ready, stopped as a group. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

/**
 * Whether a process that dies on its own is started again. The GPU functions are: they hold no state a restart
 * loses (the edge retries nothing, a client sees one 502/503 and the next request is served), so a crash costs
 * one request, not the stack. At most `maxRestarts` within `windowMs`, waiting `backoffMs`, doubled each time;
 * past that, or for a process without a policy (the edge under wrangler dev, which restarts its own worker),
 * the whole stack stops with a message naming the process, its exit code or signal and its last log lines.
 */
export interface RestartPolicy {
  maxRestarts: number;
  windowMs: number;
  backoffMs: number;
}

export const FUNCTION_RESTARTS: RestartPolicy = { maxRestarts: 3, windowMs: 5 * 60_000, backoffMs: 1000 };

/** How many of a process's last log lines a crash message repeats. */
const TAIL_LINES = 20;

interface Child {
  process: ChildProcess;
  spawn: () => ChildProcess;
  policy?: RestartPolicy;
  restarts: number[];
}

/** The three child processes: output prefixed, each in its own process group so stop() ends what it spawned. */
export class Processes {
  private readonly children = new Map<string, Child>();
  private readonly tails = new Map<string, string[]>();
  private stopping = false;
  private onCrash!: (message: string) => void;
  readonly crashed = new Promise<string>((resolve) => {
    this.onCrash = resolve;
  });

  constructor(
    private readonly root: string,
    private readonly log: (line: string) => void,
  ) {}

  start(name: string, command: string, args: string[], env: Record<string, string>, policy?: RestartPolicy): void {
    const spawnOne = () => {
      const child = spawn(command, args, {
        cwd: this.root,
        env: { ...process.env, ...env, FORCE_COLOR: "0" },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const onData = (chunk: Buffer) => {
        const lines = chunk
          .toString()
          .split("\n")
          .filter((line) => line.trim());
        this.tails.set(name, [...(this.tails.get(name) ?? []), ...lines].slice(-TAIL_LINES));
        for (const line of lines) this.log(`[${name}] ${line}`);
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code, signal) => this.exited(name, child, code, signal));
      return child;
    };
    this.children.set(name, { process: spawnOne(), spawn: spawnOne, policy, restarts: [] });
  }

  /** The pid of a process now (a restart changes it). */
  pid(name: string): number | undefined {
    return this.children.get(name)?.process.pid;
  }

  /** The last log lines of a process. */
  tail(name: string): string {
    return (this.tails.get(name) ?? []).join("\n");
  }

  private exited(name: string, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const entry = this.children.get(name);
    if (this.stopping || !entry || entry.process !== child) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const now = Date.now();
    const policy = entry.policy;
    if (policy) {
      entry.restarts = entry.restarts.filter((at) => now - at < policy.windowMs);
      if (entry.restarts.length < policy.maxRestarts) {
        const delay = policy.backoffMs * 2 ** entry.restarts.length;
        entry.restarts.push(now);
        this.log(
          `[stack] ${name} (pid ${child.pid}) ${how}; restarting it in ${delay} ms ` +
            `(restart ${entry.restarts.length} of ${policy.maxRestarts} within ${Math.round(policy.windowMs / 1000)} s). ` +
            `Its last lines:\n${this.tail(name)}`,
        );
        setTimeout(() => {
          if (!this.stopping) entry.process = entry.spawn();
        }, delay).unref();
        return;
      }
    }
    const why = policy
      ? `, and it was restarted ${policy.maxRestarts} times within ${Math.round(policy.windowMs / 1000)} s already`
      : "";
    this.onCrash(`${name} (pid ${child.pid}) ${how}${why}. Its last log lines:\n${this.tail(name)}`);
  }

  async waitFor(name: string, url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const child = this.children.get(name)?.process;
      if (child && child.exitCode !== null && !this.children.get(name)?.policy)
        throw new Error(`${name} exited with ${child.exitCode} before it was ready:\n${this.tail(name)}`);
      if (
        await fetch(url).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`${name} was not ready at ${url} within ${timeoutMs} ms:\n${this.tail(name)}`);
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.children.values()].map((child) => stopChild(child.process)));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), signal); // the group this script created for the child
    } catch {}
  };
  signalGroup("SIGTERM");
  const timer = setTimeout(() => signalGroup("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export function run(
  root: string,
  name: string,
  command: string,
  args: string[],
  log: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, CI: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const keep = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) {
        log(`[${name}] applied`);
        resolve();
      } else reject(new Error(`${name} failed (${code}):\n${output.slice(-3000)}`));
    });
  });
}

export async function isFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(p, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
