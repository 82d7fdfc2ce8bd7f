import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FALLBACK_DEFAULTS,
  resolveServingDefaults,
  SERVING_DEFAULTS_FILE,
  ServingDefaultsSchema,
} from "./serving-defaults.js";

const versions = { small: "s@1", large: "l@1" };
const calibrated = {
  pair: versions,
  exit: { threshold: 0.61, retention: 0.05, rule: "confidence" },
  prune: { layer: 2, retention: 0.2 },
};

describe("resolveServingDefaults", () => {
  it("without a calibration for the pair, prunes at the large pack's first split layer", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stitch-defaults-"));
    const resolved = await resolveServingDefaults(dir, versions, {}, [9, 14]);
    expect(resolved.prune).toEqual({ layer: 9, retention: FALLBACK_DEFAULTS.prune.retention });
    expect(resolved.exit).toEqual(FALLBACK_DEFAULTS.exit);
  });

  it("layers calibration file, then overrides, over the built-in fallback", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stitch-defaults-"));
    await writeFile(join(dir, SERVING_DEFAULTS_FILE), JSON.stringify(calibrated));
    expect((await resolveServingDefaults(dir, versions, {}, [9, 14])).prune).toEqual(calibrated.prune);
    const other = await resolveServingDefaults(dir, { ...versions, large: "l@2" }, {}, [9, 14]);
    expect(other.prune.layer).toBe(9);
    const overridden = await resolveServingDefaults(dir, versions, { pruneLayer: 14, exitThreshold: 0.5 }, [9, 14]);
    expect([overridden.prune.layer, overridden.exit.threshold, overridden.exit.rule]).toEqual([14, 0.5, "confidence"]);
  });
});

describe("the offline calibrated score in the calibration file", () => {
  it("the committed file (npm run calibrate) carries a monotone fit named by its labelled set", async () => {
    const file = ServingDefaultsSchema.parse(
      JSON.parse(await readFile(join("model-packs", SERVING_DEFAULTS_FILE), "utf8")),
    );
    const agreement = file.agreement;
    if (!agreement) throw new Error("serving-defaults.json has no agreement fit");
    expect(agreement.calibration).toBe(`offline:${file.calibration?.seed}/${file.calibration?.count}`);
    agreement.steps.slice(1).forEach((step, i) => {
      expect(step.from).toBeGreaterThan(agreement.steps[i]?.from ?? Number.NaN);
      expect(step.p).toBeGreaterThan(agreement.steps[i]?.p ?? Number.NaN);
    });
  });

  it("is served as measured, dropped under another score or escalation (rule, re-read, K, r), absent without a fit", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stitch-defaults-"));
    const agreement = { calibration: "offline:1/10", steps: [{ from: 0.2, p: 0.4 }] };
    await writeFile(join(dir, SERVING_DEFAULTS_FILE), JSON.stringify({ ...calibrated, agreement }));
    expect((await resolveServingDefaults(dir, versions)).agreement).toEqual(agreement);
    expect((await resolveServingDefaults(dir, versions, { exitThreshold: 0.9 })).agreement).toEqual(agreement);
    for (const other of [
      { exitRule: "average" },
      { exitRetention: 0.1 },
      { pruneLayer: 3 },
      { pruneRetention: 0.5 },
    ] as const)
      expect((await resolveServingDefaults(dir, versions, other)).agreement).toBeUndefined();
    // The same values as the file's are no override of what was measured.
    expect((await resolveServingDefaults(dir, versions, { pruneLayer: 2, exitRule: "confidence" })).agreement).toEqual(
      agreement,
    );
    const plain = await mkdtemp(join(tmpdir(), "stitch-defaults-"));
    await writeFile(join(plain, SERVING_DEFAULTS_FILE), JSON.stringify(calibrated));
    expect((await resolveServingDefaults(plain, versions)).agreement).toBeUndefined();
    await writeFile(join(plain, SERVING_DEFAULTS_FILE), JSON.stringify({ ...calibrated, agreement: { steps: [] } }));
    await expect(resolveServingDefaults(plain, versions)).rejects.toThrow();
  });
});
