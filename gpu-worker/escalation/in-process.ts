/** Escalation to the large engine in this process (`STITCH_ROLE=both`): a direct call, no HTTP hop. */
import { StitchError, UpstreamError } from "../../shared/index.js";
import type { LargeEngine } from "../engine/types.js";
import { resolveLargeMethod } from "../resolve-method.js";
import { escalateResponse } from "../run-pruned-large.js";
import { boundedSignal, type EscalateToLarge, modelVersion } from "./escalate.js";

/** The large engine in this process. */
export function inProcessEscalation(large: LargeEngine, options: { timeoutMs: number }): EscalateToLarge {
  const model = modelVersion(large.pack);
  return {
    remote: false,
    async escalate(call) {
      const { signal, done } = boundedSignal(call, options.timeoutMs);
      try {
        const result = await large.runLarge({
          image: call.decoded,
          cachePartition: call.cachePartition,
          messages: call.messages,
          // The same resolution the large function makes of a forwarded method: one path to the large model.
          ...resolveLargeMethod(call.method, large.pack),
          ranking: call.ranking,
          onToken: call.onToken,
          signal,
        });
        return escalateResponse(result, { requestId: call.requestId, model, explain: call.method.explain });
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        if (err instanceof StitchError) throw err;
        // Same shape as a failed remote call, so `fallback: small` treats both alike.
        throw new UpstreamError("The large model failed", "large_failed", null, { cause: err });
      } finally {
        done();
      }
    },
    close: async () => {},
  };
}
