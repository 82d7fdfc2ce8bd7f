/** The typed Hono environment shared by both functions' apps and their middleware. */
import type { Occupancy } from "../occupancy.js";
import type { Logger } from "./logger.js";

export interface Deadline {
  /** Epoch milliseconds by which the request must be answered. */
  at: number;
  /** Aborted at the deadline or when the client goes away; handed to the engine and downstream calls. */
  signal: AbortSignal;
}

export interface WorkerVariables {
  requestId: string;
  log: Logger;
  /** The body's SHA-256 as signed (x-stitch-body-sha256), set once the headers' signature is verified. */
  signedBodySha256: string;
  /** The exact bytes that were signed, read once (bounded in size and time) after the signature check. */
  rawBody: Uint8Array;
  /** Set once the whole body is in: until then the client is still sending (a timeout then is the client's: 408). */
  bodyRead: boolean;
  deadline: Deadline;
  /** Set once the request holds a concurrency slot (a timeout before that is overload, after it a timeout). */
  admitted: boolean;
  /** How long the request has held its concurrency slot: what it is billed (occupancy.ts). */
  occupancy: Occupancy;
  /** Gives the concurrency slot back early (idempotent), e.g. while the large model works in another process. */
  releaseSlot: () => void;
}

export type WorkerEnv = { Variables: WorkerVariables };
