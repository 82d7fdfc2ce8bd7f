/**
 * Stage "escalate": hands a question the small model did not settle to the large model, with the small model's
 * ranking. Two ways, one interface: in-process (one box, `STITCH_ROLE=both`: a direct call, no HTTP hop;
 * in-process.ts) and HTTP (the large function as its own deployable; over-http.ts). Both bound the call by the
 * large-call timeout and the request's deadline (`boundedSignal`), and both fail with typed errors the orchestrator
 * can act on (fallback to the small answer or not).
 */
import {
  type Conversation,
  type EscalateRequest,
  type EscalateResponse,
  type LargeMethod,
  UpstreamTimeoutError,
} from "../../shared/index.js";
import type { DecodedImage, OnToken } from "../engine/types.js";

export interface EscalateCall {
  requestId: string;
  /** The image as received: the HTTP call forwards it, so the large function's vision cache keys on the same hash. */
  image: EscalateRequest["image"];
  /** The same image decoded: the in-process call uses it directly. */
  decoded: DecodedImage;
  /** The request's vision-cache partition, so the large model's cache is partitioned as the small one's is. */
  cachePartition?: string;
  messages: Conversation;
  /** The large model's part of the resolved method (resolve-method.ts, largeMethod). */
  method: LargeMethod;
  /** The small model's ranking; required for `sgp`. */
  ranking?: number[];
  onToken?: OnToken;
  /** The request's own signal (deadline, client gone): its reason is rethrown as is. */
  signal?: AbortSignal;
  /** Epoch ms by which the whole request must be answered. */
  deadline?: number;
}

export interface EscalateToLarge {
  /** True when the large model runs in another process, leaving this one's accelerator free meanwhile. */
  readonly remote: boolean;
  escalate(call: EscalateCall): Promise<EscalateResponse>;
  close(): Promise<void>;
}

export const modelVersion = (pack: { name: string; version: string }) => `${pack.name}@${pack.version}`;

/**
 * A signal for one large call: aborted with UpstreamTimeoutError when the large-call timeout or the
 * request deadline passes first, or with the caller's reason when the caller aborts.
 */
export function boundedSignal(call: EscalateCall, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const limit = Math.min(Date.now() + timeoutMs, call.deadline ?? Number.POSITIVE_INFINITY);
  const own = new AbortController();
  const timer = setTimeout(
    () => own.abort(new UpstreamTimeoutError("The large function did not answer in time", "large_timeout")),
    Math.max(0, limit - Date.now()),
  );
  const signal = call.signal ? AbortSignal.any([call.signal, own.signal]) : own.signal;
  return { signal, done: () => clearTimeout(timer) };
}
