/**
 * The arithmetic of the peers comparison, pure: one request's latency from its measured parts, the two verdicts of
 * issue 29, and where a slower side loses its time (SGL's expected latency is sgl-cost.ts's).
 */

/** One request's measured parts (medians), in ms. */
export interface RequestParts {
  visionMs: number;
  prefillMs: number;
  /** One decode step (one generated token through the decoder). */
  decodeMsPerToken: number;
  /** What the request costs beyond those three: prompt building, tokenizing, session calls (Stitch); 0 if unknown. */
  overheadMs: number;
}

/** The latency of a request: vision, prefill, `steps` decode steps, overhead. */
export function requestMs(parts: RequestParts, steps: number): number {
  return parts.visionMs + parts.prefillMs + steps * parts.decodeMsPerToken + parts.overheadMs;
}

export interface Verdict {
  /** Stitch's time ÷ the peer's. */
  ratio: number;
  target: string;
  pass: boolean;
}

/** Stitch's unpruned large path within `limit`× llama.cpp's latency for the same model and weight type. */
export function withinVerdict(stitchMs: number, peerMs: number, limit = 1.5): Verdict {
  const ratio = stitchMs / peerMs;
  return { ratio, target: `≤ ${limit}×`, pass: ratio <= limit };
}

/** Stitch's SGL path (at the 70% exit rate) faster than llama.cpp running the large model alone. */
export function fasterVerdict(stitchMs: number, peerMs: number): Verdict {
  const ratio = stitchMs / peerMs;
  return { ratio, target: "< 1×", pass: ratio < 1 };
}

export interface PartGap {
  part: "vision" | "prefill" | "decode" | "per-call overhead";
  stitchMs: number;
  peerMs: number;
  /** Stitch − peer, over the whole request (decode: per step × the steps). */
  extraMs: number;
}

/** Where Stitch's request spends more than the peer's, largest gap first (parts where Stitch is faster are left out). */
export function breakdown(stitch: RequestParts, peer: RequestParts, steps: number): PartGap[] {
  const gaps: PartGap[] = [
    { part: "vision", stitchMs: stitch.visionMs, peerMs: peer.visionMs, extraMs: stitch.visionMs - peer.visionMs },
    { part: "prefill", stitchMs: stitch.prefillMs, peerMs: peer.prefillMs, extraMs: stitch.prefillMs - peer.prefillMs },
    {
      part: "decode",
      stitchMs: stitch.decodeMsPerToken,
      peerMs: peer.decodeMsPerToken,
      extraMs: steps * (stitch.decodeMsPerToken - peer.decodeMsPerToken),
    },
    {
      part: "per-call overhead",
      stitchMs: stitch.overheadMs,
      peerMs: peer.overheadMs,
      extraMs: stitch.overheadMs - peer.overheadMs,
    },
  ];
  return gaps.filter((g) => g.extraMs > 0).sort((a, b) => b.extraMs - a.extraMs);
}
