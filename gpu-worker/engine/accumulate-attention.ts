/**
 * SGP's accumulation: the attention every visual token RECEIVES, summed over all layers and heads, from the
 * prompt queries after the visual span (prefill) and from every generated token fed back (decode steps), as
 * the reference code sums it. The segment graphs already sum over their layers, heads and the counted queries;
 * what is left here is adding their per-key vectors up by original visual index, across segments, steps and
 * pruning (a pruned segment's keys are a subset, mapped back through `cols`).
 */
import type { VisualSpan } from "./build-prompt.js";

export interface AttentionAccumulator {
  /** Per visual token (index within the span): attention received so far. */
  readonly received: Float32Array;
  /** Adds a segment's per-key vector; key j < cols.length is prompt position cols[j], later keys are generated. */
  add(perKey: Float32Array, cols: number[]): void;
  /** The visual part of a per-key vector, by visual index (0 where the key was pruned). */
  visualRow(perKey: Float32Array | undefined, cols: number[]): Float32Array | undefined;
}

export function newAccumulator(span: VisualSpan): AttentionAccumulator {
  const received = new Float32Array(span.length);
  const end = span.offset + span.length;
  const each = (cols: number[], visit: (visual: number, key: number) => void) => {
    for (let j = 0; j < cols.length; j++) {
      const c = cols[j] as number;
      if (c >= span.offset && c < end) visit(c - span.offset, j);
    }
  };
  return {
    received,
    add(perKey, cols) {
      each(cols, (v, j) => {
        (received[v] as number) += perKey[j] as number;
      });
    },
    visualRow(perKey, cols) {
      if (!perKey) return undefined;
      const row = new Float32Array(span.length);
      each(cols, (v, j) => {
        row[v] = perKey[j] as number;
      });
      return row;
    },
  };
}

/** The prefill queries SGP counts (weight 1): the rows after the visual span; the span and the text before it, 0. */
export function countedQueries(cols: number[], span: VisualSpan): number[] {
  const end = span.offset + span.length;
  return cols.map((c) => (c >= end ? 1 : 0));
}
