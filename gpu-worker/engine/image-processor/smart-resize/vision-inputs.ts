/**
 * The smart_resize vision graph's integer inputs, computed on the host from the grid, as transformers' Qwen2.5-VL
 * vision tower computes them inside `forward` (4.57.1, models/qwen2_5_vl/modeling_qwen2_5_vl.py):
 * - `vision_position_ids` [P, 2]: `rot_pos_emb`'s pos_ids, (row, column) of each patch in pixel_values' order
 *   (merge blocks row-major, the m × m patches of a block row-major), repeated for each frame;
 * - `window_index` [P / merge²]: `get_window_index`: the merged tokens, taken window by window (windows of
 *   window_px / patch_px / merge tokens a side, row-major, the last row and column of windows cut short), each
 *   window row-major; the tower gathers hidden_states[window_index] in blocks of merge² patches;
 * - `window_segments` [P]: the window of each patch in that gathered order: the split the windowed layers'
 *   cu_window_seqlens makes after torch.unique_consecutive (which drops the empty windows get_window_index pads
 *   with when a side is a multiple of the window), numbered 0, 1, … over the non-empty windows.
 * Checked against rot_pos_emb / get_window_index on grids divisible and not divisible by the window
 * (vision-inputs.test.ts). Arrays are int32; the graph takes them as int64.
 */
import type { SmartResizeRecipe } from "../../../../shared/index.js";
import { mergeOrder } from "./merge-order.js";
import type { Grid } from "./smart-resize.js";

type WindowRecipe = Pick<SmartResizeRecipe, "patch_px" | "merge" | "window_px">;

function checkGrid(grid: Grid, merge: number): void {
  const { t, h, w } = grid;
  for (const v of [t, h, w]) if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`bad grid ${t}x${h}x${w}`);
  if (h % merge !== 0 || w % merge !== 0) throw new RangeError(`grid ${h}x${w} is not a multiple of merge ${merge}`);
}

/** rot_pos_emb's pos_ids, flattened [P, 2]: row, column of patch i at 2i, 2i + 1. `grid` in patches. */
export function visionPositionIds(grid: Grid, merge: number): Int32Array {
  checkGrid(grid, merge);
  const { t, h, w } = grid;
  const frame = h * w;
  const out = new Int32Array(t * frame * 2);
  let o = 0;
  for (const [row, col] of mergeOrder(h, w, merge)) {
    out[o++] = row;
    out[o++] = col;
  }
  for (let f = 1; f < t; f++) out.copyWithin(f * frame * 2, 0, frame * 2);
  return out;
}

export interface WindowInputs {
  /** window_index [P / merge²]: merged-token indices (row-major per frame, frames after each other) in window order. */
  windowIndex: Int32Array;
  /** window_segments [P]: window id of each patch after gathering by windowIndex (merge² patches per index). */
  windowSegments: Int32Array;
  /** cu_window_seqlens after unique_consecutive, in patches: [0, end of window 0, …, P]. */
  cuWindowSeqlens: Int32Array;
}

/**
 * get_window_index for one image (or video) of `grid` patches. `window_px` null (Qwen2-VL, no windowed layers):
 * the identity order and one segment per frame, which is the full-attention layers' cu_seqlens.
 */
export function windowInputs(grid: Grid, recipe: WindowRecipe): WindowInputs {
  const { merge } = recipe;
  checkGrid(grid, merge);
  const { t } = grid;
  const unit = merge * merge;
  const lh = grid.h / merge;
  const lw = grid.w / merge;
  const tokens = t * lh * lw;
  const windowIndex = new Int32Array(tokens);
  const cu: number[] = [0];
  if (recipe.window_px === null) {
    for (let i = 0; i < tokens; i++) windowIndex[i] = i;
    for (let f = 1; f <= t; f++) cu.push(f * lh * lw * unit);
  } else {
    // vit_merger_window_size = window_size // spatial_merge_size // patch_size
    const ws = Math.floor(Math.floor(recipe.window_px / merge) / recipe.patch_px);
    if (ws < 1) throw new RangeError(`window_px ${recipe.window_px} is under one merged token`);
    // transformers pads by ws − (n mod ws), a whole empty window when n is a multiple of ws; those windows have
    // no tokens and vanish in unique_consecutive, so the window counts below are the same either way
    let k = 0;
    for (const window of windows(t, lh, lw, ws)) {
      for (const token of window) windowIndex[k++] = token;
      cu.push(k * unit);
    }
  }
  const windowSegments = new Int32Array(tokens * unit);
  for (let s = 0; s + 1 < cu.length; s++) windowSegments.fill(s, cu[s] as number, cu[s + 1] as number);
  return { windowIndex, windowSegments, cuWindowSeqlens: Int32Array.from(cu) };
}

/**
 * The merged tokens of each attention window, window by window (frames after each other, windows row-major, tokens
 * row-major inside a window); edge windows are cut at the grid's border.
 */
function* windows(t: number, lh: number, lw: number, ws: number): Generator<number[]> {
  for (let f = 0; f < t; f++) {
    for (let wy = 0; wy < Math.ceil(lh / ws); wy++) {
      for (let wx = 0; wx < Math.ceil(lw / ws); wx++) yield windowTokens(f * lh * lw, lw, wy * ws, wx * ws, lh, ws);
    }
  }
}

/** Token indices of the window whose top-left token is (y0, x0), in a frame starting at `base`. */
function windowTokens(base: number, lw: number, y0: number, x0: number, lh: number, ws: number): number[] {
  const tokens: number[] = [];
  for (let y = y0; y < Math.min(lh, y0 + ws); y++) {
    for (let x = x0; x < Math.min(lw, x0 + ws); x++) tokens.push(base + y * lw + x);
  }
  return tokens;
}

/** All three integer inputs with their dims, for one image of `grid` patches. */
export function visionInputs(grid: Grid, recipe: WindowRecipe) {
  const positionIds = visionPositionIds(grid, recipe.merge);
  const { windowIndex, windowSegments, cuWindowSeqlens } = windowInputs(grid, recipe);
  const patches = grid.t * grid.h * grid.w;
  return {
    vision_position_ids: { data: positionIds, dims: [patches, 2] as [number, number] },
    window_index: { data: windowIndex, dims: [windowIndex.length] as [number] },
    window_segments: { data: windowSegments, dims: [patches] as [number] },
    cuWindowSeqlens,
  };
}
