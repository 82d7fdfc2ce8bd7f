/**
 * FLOPs of one decoder segment run (2 × multiply-accumulates), counted as these models compute them: the query
 * and output projections at full width, keys and values at the grouped-query width, the MLP's two or three
 * matrices (SwiGLU has gate, up and down), attention over queries × keys per query head, and the LM head only
 * on the rows whose logits are computed. Projections and MLP grow with the query tokens, attention with
 * queries × keys: pruning shrinks both, which is where the speed-up limit L / (K + (L - K)·r) comes from.
 */
export interface DecoderDims {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  mlpHidden: number;
  /** 3 for SwiGLU, 2 for a plain MLP. */
  mlpMatrices: number;
  vocab: number;
}

export function estimateSegmentFlops(
  dims: DecoderDims,
  layers: number,
  queries: number,
  keys: number,
  logitRows: number,
): number {
  const d = dims.hidden;
  const qWidth = dims.heads * dims.headDim;
  const kvWidth = dims.kvHeads * dims.headDim;
  const projections = queries * (2 * d * qWidth + 2 * d * kvWidth + dims.mlpMatrices * d * dims.mlpHidden);
  const attention = 2 * queries * keys * qWidth;
  const head = logitRows * d * dims.vocab;
  return 2 * (layers * (projections + attention) + head);
}
