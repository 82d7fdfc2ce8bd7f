/**
 * SGP's ranking: the attention each visual token received (from the text after
 * the image and every generated token, over all layers and heads) is its
 * importance. `topVisualTokens` keeps the ceil(r·N) most important ones.
 */
export function keptCount(total: number, retention: number): number {
  return Math.min(total, Math.max(1, Math.ceil(retention * total - 1e-9)));
}

/** Indices of the top `ceil(retention·N)` entries of `importance`, ties broken by lower index. */
export function topVisualTokens(importance: ArrayLike<number>, retention: number): number[] {
  const n = importance.length;
  const order = [...Array(n).keys()].sort((a, b) => (importance[b] as number) - (importance[a] as number) || a - b);
  return order.slice(0, keptCount(n, retention)).sort((a, b) => a - b);
}
