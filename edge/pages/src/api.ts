/** The pages' only way out: this origin's API, with the key from the key box (CSP connect-src 'self' enforces it). */
import type { ChatCompletionChunk, StitchResult } from "../../../shared/schemas/chat-completions.js";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

interface ErrorBody {
  error?: { message?: string; code?: string | null; request_id?: string | null };
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  let body: ErrorBody = {};
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {}
  return new ApiError(
    body.error?.message ?? `HTTP ${res.status}: ${text.slice(0, 200) || res.statusText}`,
    res.status,
    body.error?.code ?? null,
    body.error?.request_id ?? res.headers.get("x-request-id"),
  );
}

export async function apiFetch(key: string, path: string, init: RequestInit = {}): Promise<Response> {
  if (!key) throw new ApiError("Paste an API key first (sk-stitch-…).", 0, "missing_api_key", null);
  let res: Response;
  try {
    res = await fetch(path, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` },
    });
  } catch (err) {
    throw new ApiError(`The API could not be reached: ${(err as Error).message}`, 0, null, null);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function apiJson<T>(key: string, path: string): Promise<T> {
  return (await (await apiFetch(key, path)).json()) as T;
}

export interface StreamedAnswer {
  text: string;
  stitch: StitchResult | null;
  requestId: string | null;
  firstTokenMs: number | null;
}

/** POST /v1/chat/completions with stream: true; calls onText with the text so far after each chunk. */
export async function streamChat(
  key: string,
  body: Record<string, unknown>,
  onText: (text: string) => void,
): Promise<StreamedAnswer> {
  const started = performance.now();
  const res = await apiFetch(key, "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  const out: StreamedAnswer = {
    text: "",
    stitch: null,
    requestId: res.headers.get("x-request-id"),
    firstTokenMs: null,
  };
  const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) throw new ApiError("The API sent no body", res.status, null, out.requestId);
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
        .join("\n");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data) as ChatCompletionChunk & ErrorBody;
      if (chunk.error) {
        throw new ApiError(
          chunk.error.message ?? "The stream failed",
          res.status,
          chunk.error.code ?? null,
          out.requestId,
        );
      }
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        out.firstTokenMs ??= performance.now() - started;
        out.text += delta;
        onText(out.text);
      }
      if (chunk.stitch) out.stitch = chunk.stitch;
    }
  }
  return out;
}
