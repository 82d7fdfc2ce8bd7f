import { describe, expect, it } from "vitest";
import { LargeMethodSchema, type MethodParamsInput, MethodParamsSchema, type StitchError } from "../shared/index.js";
import { INTERNVL3_RECIPE, packInfo, QWEN25VL_RECIPE } from "./engine/testing.js";
import { largeMethod, resolveLargeMethod, resolveMethod } from "./resolve-method.js";

const defaults = { pruneLayer: 2, retention: 0.5 };
const internvl = packInfo(INTERNVL3_RECIPE, [2, 4]);
const qwen = packInfo(QWEN25VL_RECIPE, [2, 4]);
const pair = { small: "s@1", large: "l@1" };
const resolve = (params: MethodParamsInput, pack = internvl) =>
  resolveMethod(MethodParamsSchema.parse(params), pack, defaults, undefined, pair);

describe("resolveMethod", () => {
  it("completes absent knobs with the serving defaults and keeps the asked ones", () => {
    expect(resolve({})).toMatchObject({ mode: "sgl", maxTokens: 8, pruneLayer: 2, retention: 0.5, explain: false });
    expect(resolve({ prune_layer: 4, retention: 0.25, exit_threshold: 0.7, logprobs: 3 })).toMatchObject({
      pruneLayer: 4,
      retention: 0.25,
      exitThreshold: 0.7,
      logprobs: 3,
    });
  });

  it("takes the edge's exit calibration of its own pack pair, else the one for any pair, else the offline one", () => {
    const other = { pair: { small: "s@2", large: "l@1" }, threshold: 0.3, calibration: "shadow:900@40/0.05" };
    const own = { pair, threshold: 0.7, calibration: "shadow:300@41/0.05" };
    const any = { pair: null, threshold: 2, calibration: "shadow:0/0.05" };
    const picked = (exit_calibration: MethodParamsInput["exit_calibration"]) => {
      const { exitThreshold, calibration } = resolve({ exit_calibration });
      return { exitThreshold, calibration };
    };
    expect(picked([other, own, any])).toEqual({ exitThreshold: 0.7, calibration: own.calibration });
    expect(picked([other, any])).toEqual({ exitThreshold: 2, calibration: any.calibration });
    expect(picked([other])).toEqual({ exitThreshold: undefined, calibration: "offline" });
    expect(resolve({ exit_calibration: [own], exit_threshold: 0.5 })).toMatchObject({
      exitThreshold: 0.5,
      calibration: "request",
    });
  });

  it("refuses a prune layer the large pack has no boundary at, by its public name", () => {
    try {
      resolve({ prune_layer: 3 });
      expect.unreachable();
    } catch (err) {
      expect((err as StitchError).code).toBe("invalid_prune_layer");
      expect((err as StitchError).param).toBe("stitch.prune_layer");
    }
  });
});

describe("the large model's part, sent on and resolved again", () => {
  it.each([
    ["tiles, low", internvl, { detail: "low" as const }],
    ["tiles, high", internvl, { detail: "high" as const }],
    ["smart_resize, low (the small function's low budget travels as pixels)", qwen, { detail: "low" as const }],
    ["smart_resize, high, narrowed", qwen, { detail: "high" as const, max_pixels: 200_704 }],
  ])("%s: the large function reads the image as the small one did", (_what, pack, params) => {
    const small = resolve({ ...params, prune_layer: 4, logprobs: 2 }, pack);
    const sent = LargeMethodSchema.parse(JSON.parse(JSON.stringify(largeMethod(small, "sgp"))));
    expect(resolveLargeMethod(sent, pack)).toEqual({
      mode: "sgp",
      maxTokens: small.maxTokens,
      imageDetail: small.imageDetail,
      retention: small.retention,
      pruneLayer: 4,
      logprobs: 2,
    });
  });

  it("runs the large model unpruned (retention 1) in mode large, whatever the request's retention", () => {
    expect(largeMethod(resolve({ mode: "large", retention: 0.3 }), "large").retention).toBe(1);
    expect(largeMethod(resolve({ mode: "sgl", retention: 0.3 }), "sgp").retention).toBe(0.3);
  });
});
