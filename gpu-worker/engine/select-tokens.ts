/** Keeps rows `rows` of a [T × width] matrix: how pruning drops visual tokens' hidden states. */
export function selectRows(data: Float32Array, width: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (const [i, r] of rows.entries()) out.set(data.subarray(r * width, (r + 1) * width), i * width);
  return out;
}
