/**
 * Sends generated bad requests to the edge with a fixed number in flight and judges each answer against the
 * refusal it predicts (test/fuzz/): a 5xx, a 2xx (a bad request accepted), a client-side failure, a 4xx without
 * the OpenAI error object or with an unbounded message are problems; a 4xx other than the predicted one is
 * counted apart (refused, but not as expected).
 */
import { type BadRequest, describeRequest, requestInit } from "../test/fuzz/bad-requests.js";

/** shared/errors.ts MAX_ERROR_MESSAGE_CHARS. */
const MAX_MESSAGE = 1024;
const EXAMPLES = 12;

export interface Tally {
  sent: number;
  /** "413 body_too_large", "200", "client error" … → count. */
  byStatusCode: Map<string, number>;
  byCategory: Map<string, Map<number | "client error", number>>;
  fiveXx: number;
  twoXx: number;
  clientErrors: number;
  /** 4xx without {error: {message, type, code}}, a message over 1 KB, or another request id. */
  badErrorObjects: number;
  /** 4xx, but not the status or code the case predicts. */
  otherRefusals: number;
  /** A few of each kind of problem, described. */
  examples: Map<string, string[]>;
  requestBytes: number;
  durationS: number;
}

const bump = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

function note(t: Tally, kind: string, req: BadRequest, got: string) {
  const list = t.examples.get(kind) ?? [];
  if (list.length < EXAMPLES) list.push(`${describeRequest(req).slice(0, 300)} → ${got.slice(0, 300)}`);
  t.examples.set(kind, list);
}

const sizeOf = (req: BadRequest) =>
  req.body.kind === "text"
    ? req.body.text.length
    : req.body.kind === "bytes"
      ? req.body.bytes.length
      : req.body.kind === "chunked"
        ? req.body.bytes
        : 0;

async function sendOne(edgeUrl: string, apiKey: string, req: BadRequest, t: Tally): Promise<void> {
  const category = t.byCategory.get(req.category) ?? new Map();
  t.byCategory.set(req.category, category);
  t.requestBytes += sizeOf(req);
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${edgeUrl}${req.path}`, { ...requestInit(req, apiKey), signal: AbortSignal.timeout(120_000) });
    text = await res.text();
  } catch (err) {
    t.clientErrors++;
    bump(t.byStatusCode, "client error");
    bump(category, "client error");
    note(t, "client error", req, String((err as Error).cause ?? err));
    return;
  }
  bump(category, res.status);
  let error: { message?: unknown; type?: unknown; code?: unknown; request_id?: unknown } | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {}
  const code = typeof error?.code === "string" ? error.code : "";
  bump(t.byStatusCode, `${res.status}${code ? ` ${code}` : ""}`);
  const got = `${res.status} ${text.slice(0, 200)}`;
  if (res.status >= 500) {
    t.fiveXx++;
    note(t, "5xx", req, got);
  } else if (res.status < 400) {
    t.twoXx++;
    note(t, "accepted (not a 4xx)", req, got);
  } else if (
    !error ||
    typeof error.message !== "string" ||
    typeof error.type !== "string" ||
    !code ||
    error.message.length > MAX_MESSAGE ||
    error.request_id !== res.headers.get("x-request-id")
  ) {
    t.badErrorObjects++;
    note(t, "4xx without a proper error object", req, got);
  } else if (!req.refusal.status.includes(res.status) || (req.refusal.code && !req.refusal.code.includes(code))) {
    t.otherRefusals++;
    note(t, "4xx other than predicted", req, `${got} (predicted ${req.refusal.status} ${req.refusal.code ?? ""})`);
  }
}

export async function sendAll(
  edgeUrl: string,
  apiKey: string,
  requests: Iterable<BadRequest>,
  options: { inFlight: number; progress?: (sent: number) => void },
): Promise<Tally> {
  const t: Tally = {
    sent: 0,
    byStatusCode: new Map(),
    byCategory: new Map(),
    fiveXx: 0,
    twoXx: 0,
    clientErrors: 0,
    badErrorObjects: 0,
    otherRefusals: 0,
    examples: new Map(),
    requestBytes: 0,
    durationS: 0,
  };
  const started = performance.now();
  const iterator = requests[Symbol.iterator]();
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      await sendOne(edgeUrl, apiKey, next.value, t);
      if (++t.sent % 1000 === 0) options.progress?.(t.sent);
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  t.durationS = (performance.now() - started) / 1000;
  return t;
}
