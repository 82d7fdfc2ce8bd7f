/**
 * One request's pass through a pack's decoder segments: a prefill over
 * [visual tokens][text] and then one step per generated token, with a KV cache
 * per segment. It accumulates the attention each visual token receives from the
 * text queries and generated tokens (summed over every layer and head), and can
 * prune visual tokens at a segment boundary: layers before it keep every token,
 * layers from it on keep only the chosen ones, with their original position ids.
 */
import type ort from "onnxruntime-node";
import { estimateSegment, type LoadedModel } from "./loaded-model.js";
import { floatTensor, int64Tensor, type Meter } from "./onnx-sessions.js";
import { selectRows } from "./select-tokens.js";

export interface PruneAt {
  /** Segment boundary (layer index) from which only the kept visual tokens remain; 0 = before the first layer. */
  layer: number;
  /**
   * Original indices of the visual tokens to keep. Receives the attention of the
   * last prefill query at the layer just before the boundary (for FastV).
   */
  choose: (lastQueryAttention: Float32Array | undefined) => number[];
}

interface SegmentState {
  past: ort.Tensor[];
  /** Original index of each cache column of the prefill (visual tokens are < numVisual). */
  cols: number[];
}

export class DecoderRun {
  readonly received: Float32Array;
  private readonly segments: SegmentState[] = [];
  visualKept: number;

  constructor(
    private readonly model: LoadedModel,
    private readonly meter: Meter,
  ) {
    this.received = new Float32Array(model.numVisual);
    this.visualKept = model.numVisual;
  }

  /**
   * Runs the prompt. Returns the logits of every remaining position ([rows × vocab])
   * and the original index of each row (text position k is index numVisual + k).
   */
  async prefill(
    visual: Float32Array,
    textIds: number[],
    prune?: PruneAt,
  ): Promise<{ logits: Float32Array; cols: number[] }> {
    const { hidden } = this.model.dims;
    const n = this.model.numVisual;
    const textEmbeds = this.embed(textIds);
    let x: Float32Array = new Float32Array(visual.length + textEmbeds.length);
    x.set(visual);
    x.set(textEmbeds, visual.length);
    let cols = [...Array(n + textIds.length).keys()];
    let lastQueryAttention: Float32Array | undefined;
    for (const seg of this.model.sessions.segments) {
      if (prune && prune.layer === seg.firstLayer) {
        const keep = [...new Set(prune.choose(lastQueryAttention))]
          .filter((i) => i >= 0 && i < n)
          .sort((a, b) => a - b);
        const rows = [...keep.map((k) => cols.indexOf(k)), ...textRows(cols, n)];
        x = selectRows(x, hidden, rows);
        cols = rows.map((r) => cols[r] as number);
        this.visualKept = keep.length;
      }
      const t = cols.length;
      const out = await this.runSegment(seg, x, cols, this.emptyPast(seg.endLayer - seg.firstLayer));
      this.segments.push({ past: out.presents, cols });
      this.accumulate(out.attention, cols, textRows(cols, n), t);
      lastQueryAttention = this.lastRow(out.attentionLast, cols, t);
      x = out.hidden;
    }
    return { logits: x, cols };
  }

  /** Feeds one generated token at `position`; returns its next-token logits. */
  async step(tokenId: number, position: number): Promise<Float32Array> {
    let x: Float32Array = this.embed([tokenId]);
    for (const [i, seg] of this.model.sessions.segments.entries()) {
      const state = this.segments[i] as SegmentState;
      const out = await this.runSegment(seg, x, [position], state.past);
      state.past = out.presents;
      this.accumulate(out.attention, state.cols, [0], out.attention.length);
      x = out.hidden;
    }
    return x;
  }

  /** Rows of the token-embedding table tabulated at load (see loaded-model.ts). */
  private embed(ids: number[]): Float32Array {
    const { hidden } = this.model.dims;
    const table = this.model.tokenEmbeddings;
    const out = new Float32Array(ids.length * hidden);
    for (const [i, id] of ids.entries()) out.set(table.subarray(id * hidden, (id + 1) * hidden), i * hidden);
    return out;
  }

  private emptyPast(layers: number): ort.Tensor[] {
    const { heads, headDim } = this.model;
    return Array.from({ length: 2 * layers }, () => floatTensor(new Float32Array(0), [1, heads, 0, headDim]));
  }

  private async runSegment(
    seg: LoadedModel["sessions"]["segments"][number],
    x: Float32Array,
    positions: number[],
    past: ort.Tensor[],
  ) {
    const { hidden } = this.model.dims;
    const t = x.length / hidden;
    const feeds: Record<string, ort.Tensor> = {
      hidden_states: floatTensor(x, [1, t, hidden]),
      position_ids: int64Tensor(positions, [1, t]),
    };
    for (let l = seg.firstLayer; l < seg.endLayer; l++) {
      feeds[`past_key_${l}`] = past[2 * (l - seg.firstLayer)] as ort.Tensor;
      feeds[`past_value_${l}`] = past[2 * (l - seg.firstLayer) + 1] as ort.Tensor;
    }
    const pastLen = (past[0]?.dims[2] as number) ?? 0;
    const out = await this.meter.run(seg.session, feeds);
    const final = seg.endLayer === this.model.dims.layers;
    this.meter.flops += estimateSegment(this.model, seg, t, pastLen + t, final);
    const presents: ort.Tensor[] = [];
    for (let l = seg.firstLayer; l < seg.endLayer; l++) {
      presents.push(out[`present_key_${l}`] as ort.Tensor, out[`present_value_${l}`] as ort.Tensor);
    }
    return {
      hidden: (final ? out.logits?.data : out.hidden_out?.data) as Float32Array,
      presents,
      attention: out.attention?.data as Float32Array,
      attentionLast: out.attention_last?.data as Float32Array,
    };
  }

  /**
   * Adds the attention that visual keys receive from the given query rows.
   * `attention` is [queries × keys]; key j < cols.length is prefill column cols[j].
   */
  private accumulate(attention: Float32Array, cols: number[], queryRows: number[], keys: number): void {
    const n = this.model.numVisual;
    for (const q of queryRows) {
      for (let j = 0; j < cols.length; j++) {
        const c = cols[j] as number;
        if (c < n) (this.received[c] as number) += attention[q * keys + j] as number;
      }
    }
  }

  /** The last query's attention over visual tokens, indexed by original visual index. */
  private lastRow(attention: Float32Array, cols: number[], t: number): Float32Array {
    const n = this.model.numVisual;
    const row = new Float32Array(n);
    cols.forEach((c, j) => {
      if (c < n) row[c] = attention[(t - 1) * t + j] as number;
    });
    return row;
  }

  /** Drops the KV caches once the run is over (keeps memory flat between requests). */
  release(): void {
    this.segments.length = 0;
  }
}

/** Rows of the prompt that are text (the queries SGP counts during prefill). */
function textRows(cols: number[], numVisual: number): number[] {
  const rows: number[] = [];
  for (let i = 0; i < cols.length; i++) if ((cols[i] as number) >= numVisual) rows.push(i);
  return rows;
}
