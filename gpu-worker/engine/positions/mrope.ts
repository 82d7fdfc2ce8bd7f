/**
 * The decoder's position_ids, by the pack's `decoder.rope.positions`:
 * - `1d`: [1, T], each token's index in the (unpruned) sequence;
 * - `mrope` (Qwen2-VL, Qwen2.5-VL): [3, 1, T], rows temporal, height, width. As transformers' `get_rope_index`
 *   (4.57.1, models/qwen2_5_vl/modeling_qwen2_5_vl.py) for a prompt with one image: text before the image counts
 *   0, 1, … in all three rows; the image's visual token k (row r, column c of the merged grid) gets
 *   (s, s + r, s + c) after s text positions (t row s + 0: a still image's frame has time 0); text after the image
 *   resumes at the largest position so far + 1. The rope delta is max position + 1 − prompt length, and decode
 *   step tokens get p + delta in all three rows, p their index in the 1-D numbering (transformers:
 *   cache_position + rope_deltas). Equivalently every token after the image is at its index + delta.
 *
 * Positions belong to the original sequence: when pruning drops prompt tokens, the kept ones keep theirs, so the
 * scheme takes the list of original indices (ascending, with gaps) rather than a count.
 *
 * Qwen2-VL's get_rope_index differs from 2.5's only for videos (frame times): identical for one still image, t = 1
 * (checked in mrope.test.ts against both).
 */
import type { POSITION_SCHEMES } from "../../../shared/index.js";

/** The image's visual tokens in the prompt: the first one's index and how many (t · h · w of the merged grid). */
export interface ImageSpan {
  offset: number;
  length: number;
}

/** The image's grid in merged (visual) tokens: image_grid_thw with h and w divided by merge. */
export interface MergedGrid {
  t: number;
  h: number;
  w: number;
}

/** A position_ids tensor's values and dims: [1, T] (1d) or [3, 1, T] (mrope, row after row). */
export interface PositionIds {
  data: number[];
  dims: number[];
}

export interface PositionScheme {
  readonly kind: (typeof POSITION_SCHEMES)[number];
  /** The rope delta decode steps add (0 for 1d and for a prompt without image). */
  readonly delta: number;
  /**
   * position_ids of the prompt tokens at these original indices (ascending; may skip pruned ones). Indices past
   * the prompt are taken as decode positions.
   */
  prompt(indices: readonly number[]): PositionIds;
  /** position_ids of `count` decode tokens whose 1-D indices are position, position + 1, …. */
  decode(position: number, count?: number): PositionIds;
}

export interface MropePositions {
  /** t, h and w rows, each of the prompt's length. */
  positions: [number[], number[], number[]];
  delta: number;
}

/** get_rope_index for a prompt of `length` tokens with one image (or none: span null) as three rows and the delta. */
export function mropePositions(length: number, span: ImageSpan | null, grid: MergedGrid | null): MropePositions {
  const at = mropeLayout(length, span, grid);
  const rows: [number[], number[], number[]] = [new Array(length), new Array(length), new Array(length)];
  for (let i = 0; i < length; i++) {
    const [t, h, w] = at(i);
    rows[0][i] = t;
    rows[1][i] = h;
    rows[2][i] = w;
  }
  return { positions: rows, delta: at.delta };
}

/** The decode-step position of 1-D index p under mrope: p + delta in all three rows. */
export function mropeDecodePosition(position: number, delta: number): [number, number, number] {
  const p = position + delta;
  return [p, p, p];
}

type Layout = ((i: number) => [number, number, number]) & { delta: number };

function mropeLayout(length: number, span: ImageSpan | null, grid: MergedGrid | null): Layout {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad prompt length ${length}`);
  if (span === null) {
    const identity = ((i: number) => [i, i, i]) as Layout;
    identity.delta = 0;
    return identity;
  }
  if (grid === null) throw new RangeError("an image span needs its grid");
  const { t, h, w } = grid;
  for (const v of [t, h, w]) if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`bad grid ${t}x${h}x${w}`);
  const { offset, length: n } = span;
  if (n !== t * h * w) throw new RangeError(`image span of ${n} tokens for a ${t}x${h}x${w} grid`);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + n > length) {
    throw new RangeError(`image span [${offset}, ${offset + n}) outside a prompt of ${length}`);
  }
  // text after the image starts at the image's largest position + 1, i.e. index + delta
  const delta = offset + Math.max(h, w) - (offset + n);
  const frame = h * w;
  const at = ((i: number) => {
    if (i < offset) return [i, i, i];
    if (i >= offset + n) return [i + delta, i + delta, i + delta];
    const k = (i - offset) % frame;
    return [offset, offset + Math.floor(k / w), offset + (k % w)];
  }) as Layout;
  at.delta = delta;
  return at;
}

/** 1d: position_ids [1, T] = the original indices themselves. */
export const oneDPositions: PositionScheme = {
  kind: "1d",
  delta: 0,
  prompt: (indices) => ({ data: [...indices], dims: [1, indices.length] }),
  decode: (position, count = 1) => ({ data: Array.from({ length: count }, (_, j) => position + j), dims: [1, count] }),
};

/** mrope for a prompt of `length` tokens with one image (span and grid null: text only, the same as 1d in 3 rows). */
export function mropeScheme(length: number, span: ImageSpan | null, grid: MergedGrid | null): PositionScheme {
  const at = mropeLayout(length, span, grid);
  const three = (positions: readonly [number, number, number][]): PositionIds => {
    const T = positions.length;
    const data = new Array<number>(3 * T);
    positions.forEach((p, j) => {
      data[j] = p[0];
      data[T + j] = p[1];
      data[2 * T + j] = p[2];
    });
    return { data, dims: [3, 1, T] };
  };
  return {
    kind: "mrope",
    delta: at.delta,
    prompt: (indices) => three(indices.map((i) => at(i))),
    decode: (position, count = 1) =>
      three(Array.from({ length: count }, (_, j) => mropeDecodePosition(position + j, at.delta))),
  };
}

/** The pack's scheme for a prompt; `image` is the visual span and merged grid when the prompt has an image. */
export function positionScheme(
  kind: (typeof POSITION_SCHEMES)[number],
  length: number,
  image: { span: ImageSpan; grid: MergedGrid } | null,
): PositionScheme {
  return kind === "1d" ? oneDPositions : mropeScheme(length, image?.span ?? null, image?.grid ?? null);
}
