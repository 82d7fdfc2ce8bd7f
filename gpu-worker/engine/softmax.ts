/** Numerically stable softmax of a logits row: one entry's probability, the argmax, and log probabilities (logprobs). */
export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  let best = 0;
  for (let i = 1; i < length; i++) if ((logits[offset + i] as number) > (logits[offset + best] as number)) best = i;
  return best;
}

export function probabilityOf(
  logits: Float32Array,
  token: number,
  offset = 0,
  length = logits.length - offset,
): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i] as number);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp((logits[offset + i] as number) - max);
  return Math.exp((logits[offset + token] as number) - max) / sum;
}

/** A token's log probability and the `top` most likely ids of the same row (highest first; ties: lower id first). */
export interface TokenScores {
  logprob: number;
  top: { id: number; logprob: number }[];
}

/**
 * Log-softmax of one logits row at `token`, and its top `top` entries, in float64: log p(i) = x_i − (m + log Σ e^(x_j − m)).
 * One pass for the normaliser and one for the top entries (an insertion into at most 20 slots), so it costs about
 * what probabilityOf does; the engine runs it only when the request asks for logprobs.
 */
export function tokenScores(
  logits: Float32Array,
  token: number,
  top: number,
  offset = 0,
  length = logits.length - offset,
) {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i] as number);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp((logits[offset + i] as number) - max);
  const logZ = max + Math.log(sum);
  const best: number[] = [];
  for (let i = 0; i < length && top > 0; i++) {
    const x = logits[offset + i] as number;
    if (best.length === top && x <= (logits[offset + (best[top - 1] as number)] as number)) continue;
    let at = best.length;
    while (at > 0 && x > (logits[offset + (best[at - 1] as number)] as number)) at--;
    best.splice(at, 0, i);
    if (best.length > top) best.pop();
  }
  const scores: TokenScores = {
    logprob: (logits[offset + token] as number) - logZ,
    top: best.map((id) => ({ id, logprob: (logits[offset + id] as number) - logZ })),
  };
  return scores;
}
