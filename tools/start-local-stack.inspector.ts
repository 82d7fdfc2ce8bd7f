/**
 * Turns off the DevTools Network events of a `wrangler dev` runtime while no debugger is attached.
 *
 * Why: `wrangler dev` puts an inspector proxy (its InspectorProxyWorker, in the workerd "proxy" process that also
 * forwards every request) between the runtime and any DevTools. On connecting to the runtime it enables the
 * runtime's `Network` domain, so every subrequest the Worker makes (each D1 query, each call to the small function,
 * each queue send) comes back as four DevTools events, and the proxy keeps every event until a DevTools client
 * attaches. With no debugger attached, that is memory the proxy never gives back: a Worker of no Stitch code making
 * one subrequest per request grows its proxy several times faster than an empty Worker's (`npm run bench:dev-proxy`,
 * bench/results/dev-proxy.md), and the edge's proxy grew 12 MiB/min faster than the empty Worker's in a 20-minute
 * soak. With `Network.disable` sent once, it grows as the empty Worker's does.
 *
 * A DevTools frontend with a Network panel sends `Network.enable` itself when it attaches, so a developer who
 * debugs still gets the events (not tried here with a browser's DevTools). The inspector proxy takes one DevTools
 * client at a time: this connects, sends the command, waits for its answer and leaves, so the slot is free again.
 */

/** How long each step with the inspector may take before the stack goes on without it (it is not needed to serve). */
const ANSWER_TIMEOUT_MS = 10_000;

/**
 * What `wrangler dev` prints once a reload has put a new runtime behind the inspector proxy, which then enables the
 * new runtime's Network domain again; the command is sent again a moment later (the proxy connects after printing).
 */
const RELOADED = "Local server updated and ready";
export const RELOAD_SETTLE_MS = 1500;
export const isRuntimeReload = (line: string): boolean => line.includes(RELOADED);

export type InspectorOutcome = { ok: true } | { ok: false; reason: string };

/** Sends `Network.disable` to the runtime behind `wrangler dev`'s inspector on `inspectorPort`. Never throws. */
export async function disableNetworkEvents(inspectorPort: number): Promise<InspectorOutcome> {
  try {
    return await sendCommand(await connectInspector(inspectorPort), "Network.disable");
  } catch (err) {
    return { ok: false, reason: String(err) };
  }
}

/** Connects to `wrangler dev`'s inspector on `inspectorPort` as its DevTools client; resolves once open. */
export async function connectInspector(inspectorPort: number): Promise<WebSocket> {
  const listing = await fetch(`http://127.0.0.1:${inspectorPort}/json`, {
    signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
  });
  const targets = (await listing.json()) as {
    webSocketDebuggerUrl?: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error("the inspector lists no target");
  // The inspector proxy refuses a WebSocket upgrade without a local Origin (its guard against web pages).
  return openInspectorSocket(url, { origin: "http://127.0.0.1" });
}

/**
 * Opens a DevTools WebSocket at `url`; resolves once open, bounded by `timeoutMs` (wrangler's proxy holds the
 * upgrade until it has reached the runtime, and nothing may wait on it unbounded).
 */
export async function openInspectorSocket(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = ANSWER_TIMEOUT_MS,
): Promise<WebSocket> {
  // Node's WebSocket takes headers in its second argument, which the DOM typing does not know.
  const ws = new WebSocket(url, { headers } as unknown as string[]);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`the inspector's WebSocket at ${url} did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`the inspector's WebSocket at ${url} failed`));
    };
  });
  return ws;
}

export interface InspectorAnswer {
  result?: Record<string, unknown>;
  error?: { message?: string };
}

/**
 * Sends one DevTools command on an open session and resolves with its answer; what comes before it (events the
 * proxy kept for a debugger, heap snapshot chunks) is skipped. Rejects when no answer comes within `timeoutMs` or
 * the socket fails.
 */
export function inspectorCall(
  ws: WebSocket,
  id: number,
  method: string,
  timeoutMs = ANSWER_TIMEOUT_MS,
): Promise<InspectorAnswer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${method} within ${timeoutMs} ms`)), timeoutMs);
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error("the inspector's WebSocket failed"));
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as InspectorAnswer & { id?: number };
      if (message.id !== id) return;
      clearTimeout(timer);
      resolve(message);
    };
    ws.send(JSON.stringify({ id, method }));
  });
}

async function sendCommand(ws: WebSocket, method: string): Promise<InspectorOutcome> {
  try {
    const answer = await inspectorCall(ws, 1, method);
    return answer.error ? { ok: false, reason: answer.error.message ?? "refused" } : { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    ws.close();
  }
}
