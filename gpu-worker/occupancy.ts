/**
 * What a request is billed for: the wall time it holds its function's concurrency slot, i.e. the accelerator that
 * no other request may use meanwhile. Parsing the body, decoding and resizing the image, the host work between
 * model runs and the runs themselves all count, not only the time inside ONNX sessions: a request that occupies a
 * function for 1.8 s decoding is billed 1.8 s. Queueing before the slot does not count, nor anything after it is
 * given back (a remote large call is metered by the large function itself).
 */
export interface Occupancy {
  /** Milliseconds held so far (or until the slot was given back). */
  elapsedMs(): number;
}

export class SlotClock implements Occupancy {
  private readonly started = performance.now();
  private stoppedAt: number | null = null;

  /** The slot is given back: the clock stops (idempotent). */
  stop(): void {
    this.stoppedAt ??= performance.now();
  }

  elapsedMs(): number {
    return (this.stoppedAt ?? performance.now()) - this.started;
  }
}
