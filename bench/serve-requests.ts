/**
 * The requests `bench:serve` sends: scene-generator items as OpenAI chat
 * completions for the edge, and the same kind of item as signed `/v1/answer`
 * calls for the small function (each signature used once: the function refuses
 * replays). A request kind fixes the path it should take.
 */
import { randomUUID } from "node:crypto";
import { encodePng, generateItem } from "../scene-generator/index.js";
import { type AnswerRequestInput, askAboutImage, type Mode } from "../shared/index.js";
import { signRequest } from "../shared/sign-request.js";

/** small-exit: the exit threshold is 0, so SEE always exits; escalated: stitch-sgp always escalates. */
export type Kind = "small-exit" | "escalated" | "sgl";

export interface BenchItem {
  question: string;
  base64: string;
}

export function benchItem(seed: number, index: number): BenchItem {
  const item = generateItem(seed, index);
  const qa = item.questions[0];
  if (!qa) throw new Error(`item ${item.id} has no question`);
  return { question: qa.question, base64: Buffer.from(encodePng(item.rgb, item.side)).toString("base64") };
}

export interface HttpRequest {
  method: "POST" | "GET";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const MODEL: Record<Kind, string> = { "small-exit": "stitch-sgl", escalated: "stitch-sgp", sgl: "stitch-sgl" };
const MODE: Record<Kind, Mode> = { "small-exit": "sgl", escalated: "sgp", sgl: "sgl" };

export interface EdgeOptions {
  apiKey: string;
  /** Ask the edge not to read or write its answer cache (to measure the model path itself). */
  bypassCache: boolean;
  maxTokens: number;
}

export function edgeRequest(item: BenchItem, kind: Kind, options: EdgeOptions): HttpRequest {
  const stitch: Record<string, unknown> = {};
  if (kind === "small-exit") stitch.exit_threshold = 0;
  if (options.bypassCache) stitch.cache = { bypass: true };
  const body = {
    model: MODEL[kind],
    max_tokens: options.maxTokens,
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: item.question },
          { type: "image_url", image_url: { url: `data:image/png;base64,${item.base64}` } },
        ],
      },
    ],
    ...(Object.keys(stitch).length > 0 ? { stitch } : {}),
  };
  return {
    method: "POST",
    path: "/v1/chat/completions",
    headers: { authorization: `Bearer ${options.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}

/** The body of a chat completion asking `question` about a PNG (base64), `stitch-sgl` unless `extra` says otherwise. */
export function chatAboutPng(png: string, question: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: "stitch-sgl",
    messages: [
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
          { type: "text", text: question },
        ],
      },
    ],
    ...extra,
  });
}

export const ANSWER_PATH = "/v1/answer";

/** A `/v1/answer` call signed now: usable once, within the function's signature window. */
export async function smallRequest(
  item: BenchItem,
  kind: Kind,
  secret: string,
  maxTokens: number,
): Promise<HttpRequest> {
  const requestId = `bench-${randomUUID()}`;
  const payload: AnswerRequestInput = {
    request_id: requestId,
    image: { base64: item.base64, media_type: "image/png" },
    messages: askAboutImage(item.question),
    mode: MODE[kind],
    max_tokens: maxTokens,
    ...(kind === "small-exit" ? { exit_threshold: 0 } : {}),
  };
  const body = JSON.stringify(payload);
  const signed = await signRequest(secret, { method: "POST", path: ANSWER_PATH, requestId, body });
  return { method: "POST", path: ANSWER_PATH, headers: { ...signed, "content-type": "application/json" }, body };
}
