/**
 * A generated HTTP request to the edge, as plain data (so that fast-check can print and shrink it), and how to
 * turn it into a `fetch` RequestInit in workerd or Node. The run's API key is filled in when the request is sent.
 */
import type { Refusal } from "./images.js";

export type Auth =
  /** `Bearer <the run's key>` (the scheme in this case). */
  | { kind: "key"; scheme?: string }
  | { kind: "none" }
  /** This exact Authorization header. */
  | { kind: "literal"; value: string }
  /** The run's key, spoiled: its last character changed, cut short, one character more, a second word. */
  | { kind: "tampered"; how: "last-char" | "truncated" | "appended" | "second-word" };

export type Body =
  | { kind: "text"; text: string }
  | { kind: "bytes"; bytes: Uint8Array }
  /** `bytes` bytes streamed without a Content-Length (chunked), in 16 KiB chunks. */
  | { kind: "chunked"; bytes: number }
  | { kind: "none" };

export interface FuzzRequest {
  /** The kind of defect: what the benchmark tallies by. */
  category: string;
  /** The defect itself, in a few words. */
  defect: string;
  method: string;
  path: string;
  auth: Auth;
  headers: Record<string, string>;
  body: Body;
}

export interface BadRequest extends FuzzRequest {
  refusal: Refusal;
}

export const CHAT_PATH = "/v1/chat/completions";

export function authorization(auth: Auth, apiKey: string): string | undefined {
  switch (auth.kind) {
    case "key":
      return `${auth.scheme ?? "Bearer"} ${apiKey}`;
    case "none":
      return undefined;
    case "literal":
      return auth.value;
    case "tampered": {
      const last = apiKey.at(-1) === "0" ? "1" : "0";
      if (auth.how === "last-char") return `Bearer ${apiKey.slice(0, -1)}${last}`;
      if (auth.how === "truncated") return `Bearer ${apiKey.slice(0, -5)}`;
      if (auth.how === "appended") return `Bearer ${apiKey}0`;
      return `Bearer ${apiKey} ${apiKey}`;
    }
  }
}

const CHUNK = 16 * 1024;

/** A body of `total` bytes that announces no length: each pull enqueues one chunk of JSON-ish text. */
export function chunkedStream(total: number): ReadableStream<Uint8Array> {
  const chunk = new TextEncoder().encode(`{"model":"${"x".repeat(CHUNK - 10)}`.slice(0, CHUNK));
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) {
        controller.close();
        return;
      }
      const n = Math.min(CHUNK, total - sent);
      controller.enqueue(n === CHUNK ? chunk : chunk.slice(0, n));
      sent += n;
    },
  });
}

/** The request as `fetch` takes it (`duplex: "half"` for a streamed body, as workerd and undici require). */
export function requestInit(req: FuzzRequest, apiKey: string): RequestInit & { duplex?: "half" } {
  const headers = new Headers(req.headers);
  const auth = authorization(req.auth, apiKey);
  if (auth !== undefined) headers.set("authorization", auth);
  const init: RequestInit & { duplex?: "half" } = { method: req.method, headers };
  if (req.body.kind === "text") init.body = req.body.text;
  else if (req.body.kind === "bytes") init.body = req.body.bytes;
  else if (req.body.kind === "chunked") {
    init.body = chunkedStream(req.body.bytes);
    init.duplex = "half";
  }
  return init;
}

/** A bounded description for an assertion message or a report: never the whole 8 MiB body. */
export function describeRequest(req: FuzzRequest): string {
  const body =
    req.body.kind === "text"
      ? `${req.body.text.slice(0, 160)}${req.body.text.length > 160 ? `… (${req.body.text.length} chars)` : ""}`
      : req.body.kind === "bytes"
        ? `${req.body.bytes.length} raw bytes`
        : req.body.kind === "chunked"
          ? `${req.body.bytes} bytes, chunked`
          : "no body";
  const headers = JSON.stringify(req.headers).slice(0, 200);
  return `[${req.category}] ${req.defect}: ${req.method} ${req.path.slice(0, 80)} auth=${req.auth.kind} headers=${headers} body=${body}`;
}
