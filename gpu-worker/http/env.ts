/** The typed Hono environment shared by both functions' apps and their middleware. */
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
  /** The exact bytes that were signed, read once by the signature check. */
  rawBody: Uint8Array;
  deadline: Deadline;
  /** Set once the request holds a concurrency slot (a timeout before that is overload, after it a timeout). */
  admitted: boolean;
  /** Gives the concurrency slot back early (idempotent), e.g. while the large model works in another process. */
  releaseSlot: () => void;
}

export type WorkerEnv = { Variables: WorkerVariables };
