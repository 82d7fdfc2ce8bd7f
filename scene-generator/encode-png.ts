import { encode } from "fast-png";

/** PNG bytes of packed RGB pixels (fast-png is pure JS, so this also runs inside workerd). */
export function encodePng(rgb: Uint8Array, side: number): Uint8Array {
  return encode({ width: side, height: side, data: rgb, channels: 3, depth: 8 });
}
