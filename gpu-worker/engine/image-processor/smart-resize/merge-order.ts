/**
 * The order Qwen2-VL's processor and vision tower walk an image's patches in: merge blocks (m × m patches, which the
 * merger turns into one token) row-major, and inside each block its patches row-major. Shared by the pixel rows
 * (patchify.ts) and the rotary positions (vision-inputs.ts), which must agree patch for patch.
 */

/** [row, column] of each patch of a `rows` × `cols` patch grid (both multiples of `m`), in merge order. */
export function* mergeOrder(rows: number, cols: number, m: number): Generator<[number, number]> {
  for (let bh = 0; bh < rows / m; bh++) {
    for (let bw = 0; bw < cols / m; bw++) {
      for (let i = 0; i < m * m; i++) yield [bh * m + Math.floor(i / m), bw * m + (i % m)];
    }
  }
}
