/**
 * The pruning parameters checked against a large pack: one check for the request's method (resolve-method.ts,
 * before any image is decoded), the engine's own guard (engine.ts) and the start-up defaults (load-engines.ts), with
 * the parameter names as the public API spells them.
 */
import { InvalidRequestError } from "../../shared/index.js";
import type { PackInfo } from "./types.js";

export const PRUNE_PARAM = { pruneLayer: "stitch.prune_layer", retention: "stitch.retention" } as const;

export function checkPruneLayer(layer: number, large: Pick<PackInfo, "splitLayers" | "name">): void {
  if (!large.splitLayers.includes(layer)) {
    throw new InvalidRequestError(
      `prune_layer must be one of ${large.splitLayers.join(", ") || "(none)"} for ${large.name}`,
      "invalid_prune_layer",
      PRUNE_PARAM.pruneLayer,
    );
  }
}

export function checkRetention(retention: number): void {
  if (!(retention > 0 && retention <= 1)) {
    throw new InvalidRequestError("retention must be in (0, 1]", "invalid_retention", PRUNE_PARAM.retention);
  }
}
