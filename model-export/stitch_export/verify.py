"""Runs the fresh pack with onnxruntime against the transformers references and records the fixture. Fails loudly
(VerificationError) on any disagreement; returns the measured figures."""

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import reference
from .family import Case, Family, Prepared
from .lazy_model import LazyModel
from .runtime import PackRunner, Run

MAX_TOKENS = 6
# Float32 graphs that compute what transformers computes differ by rounding only; beyond these it is a bug.
LIMITS_FLOAT32 = {"vision": 1e-3, "logits": 1e-3, "pruned_logits": 1e-3, "attention_segment": 1e-3,
                  "attention_last": 1e-3, "attention_received": 1e-3, "pixels_rebuilt": 1e-5}
# Other types differ from transformers' float32 by their rounding of weights and activations, which a random
# model may amplify through its layers (the tiny InternVL3 checkpoint's int4 logits err by 0.82 of their largest
# value, int8's by 0.14, float16's by 0.005; at InternVL3-2B's dimensions int4's by 0.62 and int8's by 0.20).
# Their limits are relative to the largest |value| transformers gave for the same quantity: a gate for gross
# failures (a wrong layout, a lost scale, NaN) at 2-5× the largest relative error of any quantity measured on
# the tiny fixtures (float16 0.009, int8 0.32, int4 0.98); the stated tolerances are what the engine is held to.
RELATIVE_LIMITS = {"float16": 0.05, "int8": 1.0, "int4": 2.0}
# The stated tolerance is this many times the measured error (1-2-5 rounded up): float32's error is rounding
# that varies with the machine and the thread count; another type's error is that of its rounded weights, the
# same on every run, so the margin only covers the engine's own rounding (which the rounding sensitivity below
# measures: on the tiny fixtures a third of the margin at most).
MARGIN = {"float32": 10, "float16": 2, "int8": 2, "int4": 2}
# One nudge of the input samples the pack's sensitivity to rounding; another CPU's kernels round every
# intermediate result: the margin between the two.
ROUNDING_MARGIN = 5


class VerificationError(AssertionError):
    pass


def nice_ceil(x: float) -> float:
    """The smallest 1, 2 or 5 × 10^k ≥ x."""
    k = math.floor(math.log10(x))
    return next(m * 10.0**k for m in (1, 2, 5, 10) if m * 10.0**k >= x)


def png_base64(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def rebuild_pixels(tiles: list[np.ndarray], recipe: dict) -> np.ndarray:
    """pixel_values from uint8 tiles as the engine computes them: (u·rescale − mean) / std in float32."""
    u = np.stack(tiles).astype(np.float32).transpose(0, 3, 1, 2)
    mean = np.array(recipe["mean"], np.float32)[None, :, None, None]
    std = np.array(recipe["std"], np.float32)[None, :, None, None]
    return (u * np.float32(recipe["rescale"]) - mean) / std


def keep_top(scores: torch.Tensor, fraction: float) -> list[int]:
    """The top `fraction` of visual tokens by received attention (ties by lower index), sorted."""
    n_keep = max(1, round(fraction * len(scores)))
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:n_keep])


def top2_gap(row: torch.Tensor) -> float:
    top = row.topk(2).values
    return float(top[0] - top[1])


def floats(t) -> list[float]:
    return [float(v) for v in np.asarray(t, dtype=np.float32)]


@dataclass
class PackRun:
    """What the pack did on one case, kept so that onnxruntime can be freed before transformers reads its layers
    (at real sizes the two copies of the weights do not fit side by side)."""

    case: Case
    prepared: Prepared
    visual: np.ndarray
    run: Run  # greedy, the pack's own choices
    visual_received: np.ndarray  # SGP's sum over every call of the greedy run
    keep: list[int]  # the top visual tokens by that sum: what the pruned run keeps
    pruned: Run


class Verifier:
    """Two phases: `run_pack(runner, case)` with onnxruntime for every case, then `compare(runs)` with transformers,
    one layer at a time, teacher-forced along the pack's tokens."""

    def __init__(self, family: Family, lazy: LazyModel, manifest: dict, prune: tuple[int, float], log=lambda line: None):
        self.family, self.lazy, self.manifest, self.log = family, lazy, manifest, log
        self.prune_layer, self.prune_fraction = prune
        self.stop_ids = set(manifest["prompt"]["stop_token_ids"])
        self.dtype = manifest["weights"]["dtype"]
        self.figures = {"vision": 0.0, "logits": 0.0, "attention_segment": 0.0, "attention_last": 0.0,
                        "attention_received": 0.0, "pruned_logits": 0.0, "pixels_rebuilt": 0.0,
                        "min_top2_gap": math.inf, "tokens_compared": 0, "near_ties": 0, "tokens_equal": True}
        if self.dtype != "float32":
            self.figures |= {"rounding_logits": 0.0, "rounding_attention": 0.0}
        self.scales: dict[str, float] = {}
        # (where, transformers' top-2 gap, the pack's token, transformers' argmax) for every step compared.
        self.steps: list[tuple[str, float, int, int]] = []
        self.onnxruntime_records: dict[str, dict] = {}

    def worse(self, key: str, value: float) -> None:
        value = float(value)
        self.figures[key] = max(self.figures[key], value if math.isfinite(value) else math.inf)

    def differ(self, key: str, ours: np.ndarray, theirs: np.ndarray) -> None:
        """Records the largest |ours − theirs| and the largest |theirs| (the scale relative limits refer to)."""
        self.worse(key, np.abs(ours - theirs).max())
        self.scales[key] = max(self.scales.get(key, 0.0), float(np.abs(theirs).max()))

    def run_pack(self, runner: PackRunner, case: Case) -> PackRun:
        """The pack on one case as the engine runs it: greedy, then pruned by its own ranking."""
        self.log(f"  the pack on {case.name}")
        prepared = self.family.prepare(case)
        rebuilt = self.family.rebuilt_pixel_values(prepared, self.manifest["image"])
        self.worse("pixels_rebuilt", np.abs(rebuilt - prepared.pixel_values.numpy()).max())
        visual = runner.visual(prepared.feeds())
        o, n = prepared.visual_offset, prepared.visual_length
        positions = prepared.prefill_positions()
        run = runner.generate(prepared.input_ids, o, visual, MAX_TOKENS, self.stop_ids, positions=positions)
        # Without pruning a key keeps its index in every call, so the sum is over the same visual slice.
        received = sum(sum(x[o:o + n] for x in step.received) for step in run.steps)
        keep = keep_top(torch.from_numpy(received), self.prune_fraction)
        pruned = runner.generate(prepared.input_ids, o, visual, MAX_TOKENS, self.stop_ids, (self.prune_layer, keep),
                                 positions=positions)
        if self.dtype != "float32":
            # The pack's own outputs on the same path: the engine must reproduce these closely (same graphs,
            # same onnxruntime kernels), which the wide tolerance against transformers alone could not show.
            ours = lambda r: {"tokens": r.tokens, "gaps": [top2_gap(torch.from_numpy(x)) for x in r.logits],
                              "first_logits": floats(r.logits[0])}
            self.onnxruntime_records[case.name] = ours(run) | {"attention_received": floats(received),
                                                               "pruned": ours(pruned)}
            self.rounding_sensitivity(runner, prepared, run.tokens, run, received)
        return PackRun(case, prepared, visual, run, received, keep, pruned)

    def compare(self, runs: list[PackRun]) -> list[dict]:
        """transformers along every run's tokens (plain and pruned), layer by layer; every step's logits and
        attention sums compared on the same prefix, whatever transformers' own choice at a near-tie. Returns the
        fixture's cases."""
        segments = [(s["first_layer"], s["end_layer"]) for s in self.manifest["graphs"]["segments"]]
        plain = [reference.Forced(r.prepared, r.run.tokens, segments=segments) for r in runs]
        pruned = [reference.Forced(r.prepared, r.pruned.tokens, prune=(self.prune_layer, r.keep)) for r in runs]
        visual = reference.embed(self.family, self.lazy, plain + pruned)
        reference.run_layers(self.family, self.lazy, plain + pruned, self.log)
        cases = []
        for r, ref, pref in zip(runs, plain, pruned, strict=True):
            self.differ("vision", r.visual, visual[id(r.prepared)].numpy())
            self.compare_steps(r.case.name, "greedy", ref, r.run)
            self.compare_attention(ref, r.run)
            theirs = reference.visual_received(ref)
            self.differ("attention_received", r.visual_received, theirs)
            self.compare_steps(r.case.name, f"pruned at layer {self.prune_layer}", pref, r.pruned,
                               key="pruned_logits")
            fixture = self.fixture_case(r.case, r.prepared, ref, theirs, r.keep, pref)
            if r.case.name in self.onnxruntime_records:
                fixture["onnxruntime"] = self.onnxruntime_records[r.case.name]
            cases.append(fixture)
        return cases

    def rounding_sensitivity(self, runner: PackRunner, prepared: Prepared, tokens, run, visual_sum) -> None:
        """How far the pack's outputs move when every pixel value moves by one unit in the last place: float32
        rounding of the kind another CPU's kernels bring. Quantized activations and a random model's layers can
        amplify it a lot (a value that crosses a rounding boundary); the engine's tolerance against the recorded
        onnxruntime outputs is set from it."""
        feeds = prepared.feeds()
        pixels = feeds["pixel_values"]
        away = np.where(np.random.default_rng(0).random(pixels.shape) < 0.5, -np.inf, np.inf).astype(pixels.dtype)
        visual = runner.visual(feeds | {"pixel_values": np.nextafter(pixels, away)})
        again = runner.generate(prepared.input_ids, prepared.visual_offset, visual, MAX_TOKENS, self.stop_ids,
                                positions=prepared.prefill_positions(), forced=tokens)
        self.worse("rounding_logits", max(np.abs(a - b).max() for a, b in zip(again.logits, run.logits, strict=True)))
        o, n = prepared.visual_offset, prepared.visual_length
        moved = sum(sum(x[o:o + n] for x in step.received) for step in again.steps)
        self.worse("rounding_attention", np.abs(moved - visual_sum).max())

    def onnxruntime_tolerance(self) -> dict:
        """ROUNDING_MARGIN × the rounding sensitivity (floor 1e-4): how closely the engine must reproduce the
        recorded onnxruntime outputs (bit-identical here, with the same onnxruntime build on the same CPU)."""
        f = self.figures
        return {"logits": nice_ceil(max(ROUNDING_MARGIN * f["rounding_logits"], 1e-4)),
                "attention": nice_ceil(max(ROUNDING_MARGIN * f["rounding_attention"], 1e-4))}

    def compare_steps(self, name, what, ref: reference.Forced, run: Run, key="logits"):
        """Logits at every step; the tokens are judged in tolerances(), once the type's tolerance is known."""
        for step, (ours, theirs) in enumerate(zip(run.logits, ref.logits, strict=True)):
            self.differ(key, ours, theirs.numpy())
            self.steps.append((f"{name}, {what}, step {step}", top2_gap(theirs), run.tokens[step], int(theirs.argmax())))

    def compare_attention(self, ref: reference.Forced, run: Run):
        """Per call and segment: attention_received against transformers' attentions over the same layers, heads
        and weighted queries; attention_last against the last query at the segment's last layer."""
        for call, step in enumerate(run.steps):
            for index in range(len(ref.segments)):
                self.differ("attention_segment", step.received[index], ref.received[index][call].numpy())
                self.differ("attention_last", step.last[index], ref.last[index][call].numpy())

    def fixture_case(self, case: Case, prepared: Prepared, ref: reference.Forced, visual_received, keep,
                     pref: reference.Forced) -> dict:
        """Values recorded from transformers, not from onnxruntime. `tokens` is the path transformers was run along:
        the pack's greedy choices, which are transformers' own argmax at every step whose top-2 gap is not a near-tie
        (tolerances() checks it); the logits and gaps are transformers' on that path."""
        return {
            "name": case.name,
            "image_png_base64": png_base64(np.asarray(case.image.convert("RGB"))),
            **self.family.fixture_image(prepared),
            "messages": case.messages,
            "input_ids": prepared.input_ids,
            "visual_span": {"offset": prepared.visual_offset, "length": prepared.visual_length},
            **prepared.fixture,
            "tokens": ref.tokens,
            # The top-2 logit gap of each step: the engine compares its token only where the gap exceeds twice the
            # logits tolerance (a near-tie may go either way within the tolerance).
            "gaps": [top2_gap(row) for row in ref.logits],
            "first_logits": floats(ref.logits[0]),
            "attention_received": floats(visual_received),
            "pruned": {"layer": self.prune_layer, "keep": keep, "tokens": pref.tokens,
                       "gaps": [top2_gap(row) for row in pref.logits], "first_logits": floats(pref.logits[0])},
        }

    def tolerances(self) -> dict:
        """MARGIN × the measured onnxruntime-vs-transformers error (floors for error-free graphs). Then the tokens:
        at every step whose top-2 gap in transformers exceeds twice the logits tolerance, the pack's argmax must be
        transformers' token (an error within the tolerance cannot swap them; here it follows from comparing the
        logits of every step, and stays as the guard should that comparison ever be narrowed); at a near-tie either
        may win, and the step's logits are what is checked. The engine's conformance test applies the same rule
        to the fixture's `gaps`."""
        f, margin = self.figures, MARGIN[self.dtype]
        limits = dict(LIMITS_FLOAT32)
        if self.dtype != "float32":
            limits |= {k: RELATIVE_LIMITS[self.dtype] * scale for k, scale in self.scales.items()}
        over = {k: f[k] for k, limit in limits.items() if not f[k] <= limit}
        if over:
            raise VerificationError(f"{self.dtype} onnxruntime differs from transformers beyond {limits}: {over}")
        logits = nice_ceil(max(margin * max(f["logits"], f["pruned_logits"]), 1e-5))
        attention = nice_ceil(max(margin * max(f["attention_received"], f["attention_segment"]), 1e-5))
        f["relative"] = {k: f[k] / scale if scale else 0.0 for k, scale in self.scales.items()}
        for where, gap, ours, theirs in self.steps:
            f["min_top2_gap"] = min(f["min_top2_gap"], gap)
            if gap <= 2 * logits:
                f["near_ties"] += 1
                continue
            f["tokens_compared"] += 1
            if ours != theirs:
                f["tokens_equal"] = False
                raise VerificationError(f"{where}: onnxruntime's token {ours} ≠ transformers' {theirs} although the "
                                        f"top-2 gap {gap:.3g} exceeds 2 × the logits tolerance {logits:g}")
        return {"logits": logits, "attention": attention}
