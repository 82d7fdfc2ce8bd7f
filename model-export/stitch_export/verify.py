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
from .runtime import PackRunner

MAX_TOKENS = 6
# Float32 graphs that compute what transformers computes differ by rounding only; beyond these it is a bug.
LIMITS = {"vision": 1e-3, "logits": 1e-3, "pruned_logits": 1e-3, "attention_segment": 1e-3, "attention_last": 1e-3,
          "attention_received": 1e-3, "pixels_rebuilt": 1e-5}


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


def top2_gap(logits: list[torch.Tensor]) -> float:
    return min(float(row.topk(2).values[0] - row.topk(2).values[1]) for row in logits)


def floats(t) -> list[float]:
    return [float(v) for v in np.asarray(t, dtype=np.float32)]


@dataclass
class CaseReference:
    """What transformers computed for one case, kept so the model can be freed before onnxruntime loads the pack
    (at real sizes the two copies of the weights do not fit side by side). Attentions are kept only as the sums
    the comparison reads."""

    case: Case
    prepared: Prepared
    visual: np.ndarray
    ref: reference.Reference  # attentions dropped
    segment_received: list[list[np.ndarray]]  # per segment, per call
    segment_last: list[list[np.ndarray]]  # per call, per segment
    visual_received: torch.Tensor
    keep: list[int]
    pref: reference.Reference


class Verifier:
    """Two phases: `reference(case)` with the transformers model for every case, then `release_model()`, then
    `compare(runner, ref)` with onnxruntime."""

    def __init__(self, family: Family, model, manifest: dict, prune: tuple[int, float]):
        self.family, self.model, self.manifest = family, model, manifest
        self.runner: PackRunner | None = None
        self.prune_layer, self.prune_fraction = prune
        self.stop_ids = set(manifest["prompt"]["stop_token_ids"])
        self.figures = {"vision": 0.0, "logits": 0.0, "attention_segment": 0.0, "attention_last": 0.0,
                        "attention_received": 0.0, "pruned_logits": 0.0, "pixels_rebuilt": 0.0,
                        "min_top2_gap": math.inf, "tokens_equal": True}

    def worse(self, key: str, value: float) -> None:
        self.figures[key] = max(self.figures[key], float(value))

    def reference(self, case: Case) -> CaseReference:
        prepared = self.family.prepare(case)
        recipe = self.manifest["image"]
        rebuilt = self.family.rebuilt_pixel_values(prepared, recipe)
        self.worse("pixels_rebuilt", np.abs(rebuilt - prepared.pixel_values.numpy()).max())
        with torch.no_grad():
            ref_visual = self.family.reference_visual(self.model, prepared).numpy()
        ref = reference.greedy(self.family, self.model, prepared, MAX_TOKENS, self.stop_ids)
        segments = self.manifest["graphs"]["segments"]
        weighted = [[w.numpy() for w in reference.received(ref, prepared, range(s["first_layer"], s["end_layer"]))]
                    for s in segments]
        lasts = [[attentions[s["end_layer"] - 1][0, :, -1].sum(0).numpy() for s in segments]
                 for attentions in ref.attentions]
        o, n = prepared.visual_offset, prepared.visual_length
        all_layers = range(self.manifest["decoder"]["layers"])
        visual_received = sum(r[o:o + n] for r in reference.received(ref, prepared, all_layers))
        ref.attentions = []
        keep = keep_top(visual_received, self.prune_fraction)
        pref = reference.pruned_greedy(self.family, self.model, prepared, self.prune_layer, keep, MAX_TOKENS, self.stop_ids)
        return CaseReference(case, prepared, ref_visual, ref, weighted, lasts, visual_received, keep, pref)

    def release_model(self) -> None:
        self.model = None

    def compare(self, runner: PackRunner, r: CaseReference) -> dict:
        self.runner = runner
        prepared, case, ref = r.prepared, r.case, r.ref
        visual = runner.visual(prepared.feeds())
        self.worse("vision", np.abs(visual - r.visual).max())
        positions = prepared.prefill_positions()
        run = runner.generate(prepared.input_ids, prepared.visual_offset, visual, MAX_TOKENS, self.stop_ids,
                              positions=positions)
        self.compare_tokens(case.name, "greedy", ref, run)
        self.compare_attention(r, run)
        o, n = prepared.visual_offset, prepared.visual_length
        # Without pruning a key keeps its index in every call, so the engine's sum is over the same visual slice.
        ort_visual = sum(sum(x[o:o + n] for x in step.received) for step in run.steps)
        self.worse("attention_received", np.abs(ort_visual - r.visual_received.numpy()).max())
        prun = runner.generate(prepared.input_ids, o, visual, MAX_TOKENS, self.stop_ids, (self.prune_layer, r.keep),
                               positions=positions)
        self.compare_tokens(case.name, f"pruned at layer {self.prune_layer}", r.pref, prun, key="pruned_logits")
        return self.fixture_case(case, prepared, ref, r.visual_received, r.keep, r.pref)

    def compare_tokens(self, name, what, ref, run, key="logits"):
        if ref.tokens != run.tokens:
            self.figures["tokens_equal"] = False
            raise VerificationError(f"{name}, {what}: onnxruntime tokens {run.tokens} ≠ transformers {ref.tokens}")
        self.worse(key, np.abs(run.first_logits - ref.logits[0].numpy()).max())
        self.figures["min_top2_gap"] = min(self.figures["min_top2_gap"], top2_gap(ref.logits))

    def compare_attention(self, r: CaseReference, run):
        """Per call and segment: attention_received against transformers' attentions over the same layers, heads
        and weighted queries; attention_last against the last query at the segment's last layer."""
        segments = self.manifest["graphs"]["segments"]
        for call, step in enumerate(run.steps):
            for index in range(len(segments)):
                self.worse("attention_segment", np.abs(step.received[index] - r.segment_received[index][call]).max())
                self.worse("attention_last", np.abs(step.last[index] - r.segment_last[call][index]).max())

    def fixture_case(self, case: Case, prepared: Prepared, ref, visual_received, keep, pref) -> dict:
        """Values recorded from transformers, not from onnxruntime."""
        return {
            "name": case.name,
            "image_png_base64": png_base64(np.asarray(case.image.convert("RGB"))),
            **self.family.fixture_image(prepared),
            "messages": case.messages,
            "input_ids": prepared.input_ids,
            "visual_span": {"offset": prepared.visual_offset, "length": prepared.visual_length},
            **prepared.fixture,
            "tokens": ref.tokens,
            "first_logits": floats(ref.logits[0]),
            "attention_received": floats(visual_received),
            "pruned": {"layer": self.prune_layer, "keep": keep, "tokens": pref.tokens,
                       "first_logits": floats(pref.logits[0])},
        }

    def tolerances(self) -> dict:
        """~10× the measured onnxruntime-vs-transformers error (floors for error-free graphs); the greedy choice must
        be 10× clearer than the logits tolerance at every step."""
        f = self.figures
        over = {k: f[k] for k, limit in LIMITS.items() if f[k] > limit}
        if over:
            raise VerificationError(f"onnxruntime differs from transformers beyond {LIMITS}: {over}")
        logits = nice_ceil(max(10 * max(f["logits"], f["pruned_logits"]), 1e-5))
        attention = nice_ceil(max(10 * max(f["attention_received"], f["attention_segment"]), 1e-5))
        if f["min_top2_gap"] < 10 * logits:
            raise VerificationError(f"greedy is not stable: smallest top-2 logit gap {f['min_top2_gap']:.3g} "
                                    f"< 10 × logits tolerance {logits:g}")
        return {"logits": logits, "attention": attention}
