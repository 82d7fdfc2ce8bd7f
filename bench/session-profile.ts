/**
 * Where a request's time goes: every onnxruntime session run of a loaded model timed and labelled (vision, embed,
 * a segment's prefill or decode step), so that a benchmark can set the model's compute against the request's
 * end-to-end time; the rest is host work (image decoding and resizing, tensor building, copies, the prompt,
 * sampling). Instrumentation of the benchmark's own process: nothing of it runs in the product.
 */
import type ort from "onnxruntime-node";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";

export interface ProfileTotals {
  visionMs: number;
  embedMs: number;
  prefillMs: number;
  decodeMs: number;
  /** Decode steps: one decoder call per generated token after the first. */
  decodeSteps: number;
  sessionCalls: number;
}

const empty = (): ProfileTotals => ({
  visionMs: 0,
  embedMs: 0,
  prefillMs: 0,
  decodeMs: 0,
  decodeSteps: 0,
  sessionCalls: 0,
});

export class SessionProfile {
  private totals = empty();

  /** Wraps the model's sessions' `run` (once per model) so that every call adds to this profile's totals. */
  instrument(model: LoadedModel): void {
    const { vision, embed, segments } = model.sessions;
    this.wrap(vision, (ms) => {
      this.totals.visionMs += ms;
    });
    this.wrap(embed, (ms) => {
      this.totals.embedMs += ms;
    });
    segments.forEach(({ session }, index) => {
      this.wrap(session, (ms, feeds) => {
        const rows = (feeds.hidden_states as ort.Tensor | undefined)?.dims[1] ?? 0;
        if (rows > 1) this.totals.prefillMs += ms;
        else {
          this.totals.decodeMs += ms;
          if (index === 0) this.totals.decodeSteps += 1;
        }
      });
    });
  }

  /** The totals since the last reset, and a fresh start. */
  take(): ProfileTotals {
    const t = this.totals;
    this.totals = empty();
    return t;
  }

  private wrap(session: ort.InferenceSession, add: (ms: number, feeds: ort.InferenceSession.FeedsType) => void) {
    const run = session.run.bind(session) as (feeds: ort.InferenceSession.FeedsType) => Promise<unknown>;
    const timed = async (feeds: ort.InferenceSession.FeedsType) => {
      const start = performance.now();
      try {
        return await run(feeds);
      } finally {
        add(performance.now() - start, feeds);
        this.totals.sessionCalls += 1;
      }
    };
    Object.defineProperty(session, "run", { value: timed, configurable: true });
  }
}
