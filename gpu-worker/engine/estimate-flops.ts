/**
 * FLOPs of one decoder segment run (2 × multiply-accumulates): the projections and
 * MLP grow with the query tokens, attention with queries × keys. Pruning shrinks
 * both, which is where the speed-up limit L / (K + (L - K)·r) comes from.
 */
export interface DecoderDims {
  hidden: number;
  mlpHidden: number;
  vocab: number;
}

export function estimateSegmentFlops(
  dims: DecoderDims,
  layers: number,
  queries: number,
  keys: number,
  withHead: boolean,
): number {
  const d = dims.hidden;
  const projections = queries * (4 * d * d + 2 * d * dims.mlpHidden);
  const attention = 2 * queries * keys * d;
  const head = withHead ? queries * d * dims.vocab : 0;
  return 2 * (layers * (projections + attention) + head);
}
