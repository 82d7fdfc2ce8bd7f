/** Numerically stable softmax probability of one entry of a logits row, and the argmax. */
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
