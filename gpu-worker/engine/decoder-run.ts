/**
 * One request's pass through a pack's decoder segments: a prefill over the prompt (text around one contiguous
 * visual span) and then one step per generated token, with a KV cache per segment. Each segment graph returns
 * the attention every key position receives, already summed over its layers and heads and weighted by which
 * queries count (pack contract v2); this run adds the visual part of it up into `received`, SGP's ranking
 * (see accumulate-attention.ts). It can prune visual tokens at a segment boundary: layers before it keep every
 * token, layers from it on keep only the chosen ones, with their original position ids.
 */
import type ort from "onnxruntime-node";
import { type AttentionAccumulator, countedQueries, newAccumulator } from "./accumulate-attention.js";
import type { VisualSpan } from "./build-prompt.js";
import { estimateSegment, type LoadedModel } from "./loaded-model.js";
import { floatTensor, int64Tensor, type Meter } from "./onnx-sessions.js";
import { oneDPositions, type PositionIds, type PositionScheme } from "./positions/mrope.js";
import { selectRows } from "./select-tokens.js";

export interface PruneAt {
  /** Segment boundary (layer index) from which only the kept visual tokens remain; 0 = before the first layer. */
  layer: number;
  /**
   * Indices (within the visual span) of the visual tokens to keep. Receives the attention of the last prefill
   * query at the layer just before the boundary, per visual token (for FastV).
   */
  choose: (lastQueryAttention: Float32Array | undefined) => number[];
}

type Segment = LoadedModel["sessions"]["segments"][number];

/** What one run of the decode_steps graph chose: K tokens, each with its softmax probability. */
export interface DecodedSteps {
  tokens: number[];
  probabilities: number[];
  /**
   * Adds to SGP's sums the attention of the first `fed` decode queries (the tokens step-by-step decoding would have
   * fed back: the run's input and each returned token that neither stopped the answer nor reached max_tokens),
   * in the order step() would have added them. Call once, when the caller knows how many of the tokens it keeps.
   */
  count(fed: number): void;
}

interface SegmentState {
  past: ort.Tensor[];
  /** Original prompt position of each cache column of the prefill. */
  cols: number[];
}

export class DecoderRun {
  private readonly attention: AttentionAccumulator;
  private readonly segments: SegmentState[] = [];
  visualKept: number;
  /** The visual tokens kept at the pruning boundary, sorted (null: this run was not pruned). */
  keptVisual: number[] | null = null;

  constructor(
    private readonly model: LoadedModel,
    private readonly meter: Meter,
    private readonly span: VisualSpan,
    /** Original prompt index → the position ids the graphs take (1-D, or M-RoPE's three rows). */
    private readonly positions: PositionScheme = oneDPositions,
  ) {
    this.attention = newAccumulator(span);
    this.visualKept = span.length;
  }

  /** Attention each visual token received so far, summed over every layer and head (SGP's ranking). */
  get received(): Float32Array {
    return this.attention.received;
  }

  /**
   * Runs the prompt ([T × hidden] embeddings, visual rows in the span). Returns the logits of the prompt
   * positions asked for (default: the last one), [rows × vocab] in that order.
   */
  async prefill(embeds: Float32Array, prune?: PruneAt, logitPositions?: number[]): Promise<Float32Array> {
    const { hidden } = this.model.dims;
    let x = embeds;
    let cols = [...Array(embeds.length / hidden).keys()];
    const wanted = logitPositions ?? [cols.length - 1];
    let lastQueryAttention: Float32Array | undefined;
    for (const seg of this.model.sessions.segments) {
      if (prune && prune.layer === seg.firstLayer) {
        const rows = this.keptRows(cols, prune.choose(lastQueryAttention));
        x = selectRows(x, hidden, rows);
        cols = rows.map((r) => cols[r] as number);
      }
      const logitRows = wanted.map((position) => cols.indexOf(position));
      const positions = this.positions.prompt(cols);
      const out = await this.runSegment(
        seg,
        x,
        positions,
        countedQueries(cols, this.span),
        this.emptyPast(seg),
        logitRows,
      );
      this.segments.push({ past: out.presents, cols });
      this.attention.add(out.attentionReceived, cols);
      lastQueryAttention = this.attention.visualRow(out.attentionLast, cols);
      x = out.hidden;
    }
    return x;
  }

  /** Feeds one generated token at `position`; returns its next-token logits. */
  async step(tokenId: number, position: number): Promise<Float32Array> {
    let x: Float32Array = await this.model.embedTokens([tokenId], this.meter);
    for (const [i, seg] of this.model.sessions.segments.entries()) {
      const state = this.segments[i] as SegmentState;
      const out = await this.runSegment(seg, x, this.positions.decode(position), [1], state.past, [0]);
      state.past = out.presents;
      this.attention.add(out.attentionReceived, state.cols);
      x = out.hidden;
    }
    return x;
  }

  /** Whether the pack's decode_steps graph can decode several tokens per run (decodeSteps). */
  get stepsPerRun(): number {
    return this.model.sessions.decodeSteps?.steps ?? 1;
  }

  /**
   * Feeds `tokenId` at `position` and then each token the graph picks, K times in one run of the decode_steps graph
   * (positions position … position + K − 1); returns the K tokens picked. The KV cache takes all K new columns: when
   * the caller keeps every token, the last one is fed next (by the next run), as step() would; otherwise the run ends.
   */
  async decodeSteps(tokenId: number, position: number): Promise<DecodedSteps> {
    const graph = this.model.sessions.decodeSteps;
    if (!graph) throw new Error("this pack has no decode_steps graph");
    const segs = this.model.sessions.segments;
    const feeds: Record<string, ort.Tensor> = {
      token_id: int64Tensor([tokenId], [1]),
      position: int64Tensor([position], [1]),
    };
    segs.forEach((seg, i) => {
      const past = (this.segments[i] as SegmentState).past;
      for (let l = seg.firstLayer; l < seg.endLayer; l++) {
        feeds[`past_key_${l}`] = past[2 * (l - seg.firstLayer)] as ort.Tensor;
        feeds[`past_value_${l}`] = past[2 * (l - seg.firstLayer) + 1] as ort.Tensor;
      }
    });
    const out = await this.meter.run(graph.session, feeds);
    const k = graph.steps;
    const rows = segs.map((seg, i) => {
      const state = this.segments[i] as SegmentState;
      const pastLen = state.past[0]?.dims[2] as number;
      const presents: ort.Tensor[] = [];
      for (let l = seg.firstLayer; l < seg.endLayer; l++) {
        presents.push(out[`present_key_${l}`] as ort.Tensor, out[`present_value_${l}`] as ort.Tensor);
      }
      state.past = presents;
      const final = seg.endLayer === this.model.dims.layers;
      for (let s = 0; s < k; s++)
        this.meter.flops += estimateSegment(this.model, seg, 1, pastLen + s + 1, final ? 1 : 0);
      return { data: out[`attention_received_${seg.firstLayer}`]?.data as Float32Array, width: pastLen + k };
    });
    let counted = false;
    return {
      tokens: Array.from(out.token_ids?.data as BigInt64Array, Number),
      probabilities: Array.from(out.probabilities?.data as Float32Array),
      count: (fed) => {
        if (counted) throw new Error("decodeSteps: count() twice");
        counted = true;
        for (let s = 0; s < fed; s++) {
          rows.forEach((row, i) => {
            const state = this.segments[i] as SegmentState;
            this.attention.add(row.data.subarray(s * row.width, (s + 1) * row.width), state.cols);
          });
        }
      },
    };
  }

  /** Rows to keep at a pruning boundary: every text row, and the chosen visual ones, in prompt order. */
  private keptRows(cols: number[], chosen: number[]): number[] {
    const { offset, length } = this.span;
    const keep = new Set(chosen.filter((i) => Number.isInteger(i) && i >= 0 && i < length));
    this.visualKept = keep.size;
    this.keptVisual = [...keep].sort((a, b) => a - b);
    const rows: number[] = [];
    cols.forEach((c, r) => {
      if (c < offset || c >= offset + length || keep.has(c - offset)) rows.push(r);
    });
    return rows;
  }

  private emptyPast(seg: Segment): ort.Tensor[] {
    const { kvHeads, headDim } = this.model.dims;
    const layers = seg.endLayer - seg.firstLayer;
    return Array.from({ length: 2 * layers }, () => floatTensor(new Float32Array(0), [1, kvHeads, 0, headDim]));
  }

  private async runSegment(
    seg: Segment,
    x: Float32Array,
    positions: PositionIds,
    queryWeights: number[],
    past: ort.Tensor[],
    logitRows: number[],
  ) {
    const { hidden } = this.model.dims;
    const t = x.length / hidden;
    const pastLen = (past[0]?.dims[2] as number) ?? 0;
    const final = seg.endLayer === this.model.dims.layers;
    const feeds: Record<string, ort.Tensor> = {
      hidden_states: floatTensor(x, [1, t, hidden]),
      position_ids: int64Tensor(positions.data, positions.dims),
      // Batch 1 without padding: every key is visible; the causal order is the graph's.
      attention_mask: int64Tensor(new Array<number>(pastLen + t).fill(1), [1, pastLen + t]),
      query_weights: floatTensor(Float32Array.from(queryWeights), [1, t]),
    };
    if (final) feeds.logit_rows = int64Tensor(logitRows, [logitRows.length]);
    for (let l = seg.firstLayer; l < seg.endLayer; l++) {
      feeds[`past_key_${l}`] = past[2 * (l - seg.firstLayer)] as ort.Tensor;
      feeds[`past_value_${l}`] = past[2 * (l - seg.firstLayer) + 1] as ort.Tensor;
    }
    const out = await this.meter.run(seg.session, feeds);
    this.meter.flops += estimateSegment(this.model, seg, t, pastLen + t, final ? logitRows.length : 0);
    const presents: ort.Tensor[] = [];
    for (let l = seg.firstLayer; l < seg.endLayer; l++) {
      presents.push(out[`present_key_${l}`] as ort.Tensor, out[`present_value_${l}`] as ort.Tensor);
    }
    return {
      hidden: (final ? out.logits?.data : out.hidden_out?.data) as Float32Array,
      presents,
      attentionReceived: out.attention_received?.data as Float32Array,
      attentionLast: out.attention_last?.data as Float32Array,
    };
  }

  /** Drops the KV caches once the run is over (keeps memory flat between requests). */
  release(): void {
    this.segments.length = 0;
  }
}
