/**
 * Offered load at a fixed rate, open loop: one request every 1/rate seconds
 * whatever the answers do, then a wait for every answer. autocannon is closed
 * loop (a connection sends its next request only after an answer), so once an
 * overloaded server slows down it offers less than asked; overload needs the
 * arrival rate to hold. Results have the same shape as a closed-loop run.
 */
import { type LoadResult, type LoadSpec, ResponseTally } from "./serve-load.js";

export interface OpenLoopSpec extends Omit<LoadSpec, "connections" | "amount"> {
  /** Requests per second; the run sends rate × maxSeconds requests, then waits for every answer. */
  overallRate: number;
}

export async function runOpenLoop(spec: OpenLoopSpec): Promise<LoadResult> {
  const tally = new ResponseTally();
  let errors = 0;
  let timeouts = 0;
  const errorCauses: Record<string, number> = {};
  let peakInFlight = 0;
  let inFlight = 0;
  const one = async () => {
    const req = spec.next();
    const start = performance.now();
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    try {
      const res = await fetch(`${spec.baseUrl}${req.path}`, {
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        signal: AbortSignal.timeout((spec.timeoutSeconds ?? 60) * 1000),
      });
      await res.arrayBuffer();
      tally.recordLatency(performance.now() - start, res.ok);
      tally.recordStatus(res.status, (name) => res.headers.get(name));
    } catch (err) {
      if ((err as Error).name === "TimeoutError") timeouts++;
      else {
        errors++;
        const code = errorCode(err);
        errorCauses[code] = (errorCauses[code] ?? 0) + 1;
      }
    } finally {
      inFlight--;
    }
  };
  const total = Math.max(1, Math.round(spec.overallRate * spec.maxSeconds));
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / spec.overallRate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(one());
  }
  const offeredSeconds = (performance.now() - started) / 1000;
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  return {
    name: spec.name,
    connections: peakInFlight,
    offeredRate: spec.overallRate,
    achievedOfferedRate: total / Math.max(offeredSeconds, 1e-9),
    seconds,
    stoppedByTime: false,
    throughput: tally.responses / seconds,
    goodput: tally.good / seconds,
    errors,
    timeouts,
    errorCauses,
    ...tally.summary(),
  };
}

/** fetch wraps socket failures in a TypeError whose cause carries the code (ECONNRESET, UND_ERR_SOCKET, ...). */
function errorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string; name?: string } }).cause;
  return cause?.code ?? cause?.name ?? (err as Error).name ?? "unknown";
}
