/**
 * A stand-in for the small function, over real HTTP, for the edge's tests: it
 * verifies the edge's signature with the shared scheme, validates the
 * AnswerRequest with the shared schema, and answers with a valid AnswerResponse
 * (JSON or SSE). Mounted under `/s/<scenario>` so a test picks the behaviour by
 * pointing SMALL_FUNCTION_URL at it:
 *   ok           answers "red" (small exit); a question containing "escalate" takes the large path
 *   degraded     small answer marked degraded (large failed, fallback small)
 *   vision-cached like ok, each function's vision cache having served the image (its metering says so)
 *   slow         like ok after 1.5 s
 *   status-<N>   an error body with HTTP N (503 adds Retry-After: 7)
 *   bare-<N>     HTTP N with a non-JSON body
 *   garbage      200 with a body that is not JSON; wrong-shape: 200 JSON that is not an AnswerResponse
 *   stream-error one token, then an SSE `error` event; stream-truncated: one token, then the end
 * A scenario may name the pack pair the stub reports, `/s/<scenario>/pair/<small>/<large>` (URI-encoded; default
 * stub-small@<v>, stub-large@<v>): it serves that pair's entry of the edge's exit calibration, as the real function.
 * Every exit decision carries the offline calibrated score of STUB_AGREEMENT (a deployment with a calibration file).
 * GET /__calls?request_id=… → {count, last} says what the edge sent; POST /__version?v=2 changes the
 * model pack versions this instance reports (a deployment of new packs).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type AnswerRequest,
  AnswerRequestSchema,
  type AnswerResponse,
  exitCalibrationFor,
  type PackPair,
  ReplayGuard,
  type TokenLogprob,
  toErrorResponse,
  verifyRequest,
} from "../../../shared/index.js";
import { predictIsotonic } from "../../../shared/shadow/isotonic.js";
import { STUB_AGREEMENT } from "../stub-agreement.js";

interface Call {
  scenario: string;
  request: AnswerRequest;
  /** The caller's x-stitch-deadline (epoch ms), as sent. */
  deadline: string | undefined;
}

const smallMetering = {
  accelerator_ms: 12,
  flops: 5e7,
  visual_tokens_total: 64,
  visual_tokens_kept: 64,
  visual_tokens_cached: 0,
  // 64 visual tokens and 16 of text
  prompt_tokens: 80,
  completion_tokens: 1,
  gpu_class: "cpu",
};
const largeMetering = {
  accelerator_ms: 40,
  flops: 4e8,
  visual_tokens_total: 64,
  visual_tokens_kept: 23,
  visual_tokens_cached: 0,
  // the same image and question through the large model's own chat template
  prompt_tokens: 84,
  completion_tokens: 2,
  gpu_class: "a10g",
};

/** The stub's tokens: the answer's words (a space starts each word after the first), as streamed. */
const wordsOf = (answer: string) => answer.split(/(?= )/);

/** Made-up logprobs of a word token (its rank i): the token itself first, then `top - 1` lower alternatives. */
function stubLogprob(word: string, i: number, top: number): TokenLogprob {
  const entry = (token: string, logprob: number) => ({
    token,
    logprob,
    bytes: Array.from(new TextEncoder().encode(token)),
  });
  const chosen = entry(word, -0.125 * (i + 1));
  const others = Array.from({ length: Math.max(0, top - 1) }, (_, k) => entry(`alt${k}`, chosen.logprob - 1 - k));
  return { ...chosen, top_logprobs: top > 0 ? [chosen, ...others] : [] };
}

export function stubAnswer(
  request: AnswerRequest,
  scenario: string,
  version = "1",
  pair: PackPair = { small: `stub-small@${version}`, large: `stub-large@${version}` },
): AnswerResponse {
  const decision = (large: boolean) => (large ? 0.4 : 0.85);
  const shadow = exitCalibrationFor(request.exit_calibration, pair);
  const asked = JSON.stringify(request.messages);
  const cached = (m: typeof smallMetering) =>
    scenario === "vision-cached" ? { ...m, visual_tokens_cached: m.visual_tokens_total } : m;
  const large = asked.includes("escalate") || ["large", "sgp", "fastv"].includes(request.mode);
  return {
    request_id: request.request_id,
    answer: large ? "blue square" : "red",
    path: large ? "large" : "small",
    mode: request.mode,
    exit:
      request.mode === "large" || request.mode === "fastv"
        ? null
        : {
            confidence: 0.9,
            consistency: 0.8,
            decision: decision(large),
            // As the real function: the edge's shadow calibration of its pair when it sent one, else the deployment's.
            threshold: shadow?.threshold ?? 0.6,
            calibration: shadow?.calibration ?? "offline",
            agreement_probability: predictIsotonic(STUB_AGREEMENT.steps, decision(large)),
            agreement_calibration: STUB_AGREEMENT.calibration,
          },
    degraded: scenario === "degraded",
    finish_reason: "stop",
    // As a deployment whose STITCH_DEFAULT_DETAIL is high.
    image_detail: request.detail === "low" ? "low" : "high",
    metering: {
      // "overreport": a function claiming ten minutes of accelerator time, more than any deadline allows.
      small:
        request.mode === "large" || request.mode === "fastv"
          ? null
          : scenario === "overreport"
            ? { ...smallMetering, accelerator_ms: 600_000 }
            : cached(smallMetering),
      large: large && scenario !== "degraded" ? cached(largeMetering) : null,
    },
    models: pair,
    ...(request.logprobs !== undefined && {
      logprobs: wordsOf(large ? "blue square" : "red").map((w, i) => stubLogprob(w, i, request.logprobs ?? 0)),
    }),
  };
}

export interface StubFunction {
  url: string;
  server: Server;
}

export async function startStubFunction(secret: string): Promise<StubFunction> {
  const calls = new Map<string, Call[]>();
  const guard = new ReplayGuard();
  let version = "1";

  const server = createServer(async (req, res) => {
    try {
      await handle(req, res);
    } catch (err) {
      send(res, 500, toErrorResponse(err).body);
    }
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stub");
    if (url.pathname === "/__calls") {
      const list = calls.get(url.searchParams.get("request_id") ?? "") ?? [];
      return send(res, 200, { count: list.length, last: list.at(-1) ?? null });
    }
    if (url.pathname === "/__version" && req.method === "POST") {
      version = url.searchParams.get("v") ?? version;
      return send(res, 200, { version });
    }
    const match = /^\/s\/([\w-]+)(?:\/pair\/([^/]+)\/([^/]+))?\/v1\/answer$/.exec(url.pathname);
    if (!match || req.method !== "POST")
      return send(res, 404, {
        error: { message: "no route", type: "invalid_request_error", code: "route_not_found", param: null },
      });
    const scenario = match[1] as string;
    const body = await readAll(req);
    const requestId = String(req.headers["x-request-id"] ?? "");
    try {
      await verifyRequest(
        secret,
        { method: "POST", path: "/v1/answer", header: (name) => header(req, name), body },
        { windowSeconds: 60, seen: guard },
      );
    } catch (err) {
      const { status, body: errorBody } = toErrorResponse(err, requestId);
      return send(res, status, errorBody);
    }
    const request = AnswerRequestSchema.parse(JSON.parse(body));
    const deadline = header(req, "x-stitch-deadline");
    calls.set(request.request_id, [...(calls.get(request.request_id) ?? []), { scenario, request, deadline }]);
    const pair = match[2] && match[3] && { small: decodeURIComponent(match[2]), large: decodeURIComponent(match[3]) };
    await respond(res, scenario, request, pair || undefined);
  }

  async function respond(
    res: ServerResponse,
    scenario: string,
    request: AnswerRequest,
    pair?: PackPair,
  ): Promise<void> {
    const status = /^(status|bare)-(\d{3})$/.exec(scenario);
    if (status) {
      const code = Number(status[2]);
      if (status[1] === "bare") {
        res.writeHead(code, { "content-type": "text/plain" }).end("upstream exploded: /opt/secret/path");
        return;
      }
      const headers: Record<string, string> = code === 503 ? { "retry-after": "7" } : {};
      const type = code === 400 ? "invalid_request_error" : code === 401 ? "authentication_error" : "server_error";
      return send(
        res,
        code,
        { error: { message: `stub failure ${code}`, type, code: `stub_${code}`, param: null } },
        headers,
      );
    }
    if (scenario === "garbage") {
      res.writeHead(200, { "content-type": "application/json" }).end("{not json");
      return;
    }
    if (scenario === "wrong-shape") return send(res, 200, { hello: "world" });
    if (scenario === "slow") await new Promise((resolve) => setTimeout(resolve, 1500));
    const answer = stubAnswer(request, scenario, version, pair);
    if (!request.stream) return send(res, 200, answer);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const event = (name: string, data: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    const words = wordsOf(answer.answer);
    const token = (i: number) => ({
      text: words[i],
      ...(answer.logprobs && { logprobs: [answer.logprobs[i]] }),
    });
    event("token", token(0));
    if (scenario === "stream-error") {
      event("error", {
        error: { message: "large function failed", type: "upstream_error", code: "large_failed", param: null },
      });
      res.end();
      return;
    }
    if (scenario === "stream-truncated") {
      res.end();
      return;
    }
    for (let i = 1; i < words.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      event("token", token(i));
    }
    event("done", answer);
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
