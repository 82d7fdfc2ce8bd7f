/** The local stack's child processes: started with prefixed output, awaited until ready, stopped as a group. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

/** The three child processes: output prefixed, each in its own process group so stop() ends what it spawned. */
export class Processes {
  private readonly children = new Map<string, ChildProcess>();
  private readonly tails = new Map<string, string>();
  private stopping = false;
  private onCrash!: (message: string) => void;
  readonly crashed = new Promise<string>((resolve) => {
    this.onCrash = resolve;
  });

  constructor(
    private readonly root: string,
    private readonly log: (line: string) => void,
  ) {}

  start(name: string, command: string, args: string[], env: Record<string, string>): void {
    const child = spawn(command, args, {
      cwd: this.root,
      env: { ...process.env, ...env, FORCE_COLOR: "0" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.children.set(name, child);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      this.tails.set(name, ((this.tails.get(name) ?? "") + text).slice(-3000));
      for (const line of text.split("\n")) if (line.trim()) this.log(`[${name}] ${line}`);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      if (!this.stopping) this.onCrash(`${name} exited (${signal ?? code}):\n${this.tails.get(name) ?? ""}`);
    });
  }

  async waitFor(name: string, url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const child = this.children.get(name);
    while (Date.now() < deadline) {
      if (child && child.exitCode !== null)
        throw new Error(`${name} exited with ${child.exitCode} before it was ready:\n${this.tails.get(name) ?? ""}`);
      if (
        await fetch(url).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`${name} was not ready at ${url} within ${timeoutMs} ms:\n${this.tails.get(name) ?? ""}`);
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.children.values()].map(stopChild));
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
