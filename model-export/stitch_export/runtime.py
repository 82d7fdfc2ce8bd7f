"""The pack run with onnxruntime the way the engine runs it: vision → embed + visual rows → segments with the KV
cache, explicit original positions, optional pruning of visual rows from a split layer on."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort


@dataclass
class Step:
    """One decoder call: per segment, its attention_received and attention_last ([P+T] each)."""

    received: list[np.ndarray] = field(default_factory=list)
    last: list[np.ndarray] = field(default_factory=list)


@dataclass
class Run:
    tokens: list[int]  # the argmax of each step's logits
    logits: list[np.ndarray]  # [vocab] per step
    steps: list[Step]


class PackRunner:
    def __init__(self, pack_dir: Path, manifest: dict):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        load = lambda name: ort.InferenceSession(str(Path(pack_dir) / name), opts, providers=["CPUExecutionProvider"])
        graphs = manifest["graphs"]
        self.vision, self.embed = load(graphs["vision"]), load(graphs["embed"])
        self.segments = [(s["first_layer"], s["end_layer"], load(s["file"])) for s in graphs["segments"]]
        d = manifest["decoder"]
        self.kv_heads, self.head_dim = d["kv_heads"], d["head_dim"]

    def visual(self, feeds: dict) -> np.ndarray:
        """The vision graph on its feeds (pixel_values, and for smart_resize the host-computed index inputs)."""
        return self.vision.run(None, feeds)[0]

    def generate(self, input_ids: list[int], offset: int, visual: np.ndarray, max_tokens: int, stop_ids,
                 prune: tuple[int, list[int]] | None = None, positions: np.ndarray | None = None,
                 forced: list[int] | None = None) -> Run:
        """Greedy decoding, or teacher-forced along `forced` (each step is fed forced[i], whatever its own argmax:
        a run that meets a near-tie stays on the reference's path, so every step stays comparable). prune = (layer K, kept visual indices): the other visual rows are dropped before the
        segment starting at K (K = 0: before the first layer); positions stay the original ones. positions: the
        prefill positions, [S] (1d, default 0..S-1) or [3, S] (mrope); a decode step's position is the largest
        prefill position + 1 + the tokens fed back before it (1d: S + i; mrope: transformers' rope delta)."""
        n = int(np.prod(visual.shape[:-1]))
        x = self.embed.run(None, {"input_ids": np.array([input_ids], dtype=np.int64)})[0]
        x[0, offset:offset + n] = visual.reshape(n, -1)
        s = len(input_ids)
        positions = np.arange(s, dtype=np.int64) if positions is None else np.asarray(positions, dtype=np.int64)
        next_position = int(positions.max()) + 1
        positions = positions[None] if positions.ndim == 1 else positions[:, None, :]  # [1, S] or [3, 1, S]
        # SGP's prefill weights: the queries after the visual span.
        weights = (np.arange(s) >= offset + n).astype(np.float32)[None]
        rows = None
        if prune is not None:
            kept = set(prune[1])
            rows = np.array([i for i in range(s) if not (offset <= i < offset + n) or (i - offset) in kept])
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        tokens, steps, all_logits = [], [], []
        for _ in range(max_tokens if forced is None else len(forced)):
            logits, step = self.call(x, positions, weights, cache, prune[0] if prune else None, rows)
            all_logits.append(logits)
            steps.append(step)
            tokens.append(int(np.argmax(logits)))
            token = tokens[-1] if forced is None else forced[len(tokens) - 1]
            if token in stop_ids or len(tokens) == max_tokens:
                break
            x = self.embed.run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
            positions = np.full(positions.shape[:-1] + (1,), next_position + len(tokens) - 1, dtype=np.int64)
            weights, rows = np.ones((1, 1), dtype=np.float32), None
        return Run(tokens, all_logits, steps)  # one call per token; the last token is never fed back

    def call(self, x, positions, weights, cache, prune_layer, rows):
        step = Step()
        for first, end, session in self.segments:
            if rows is not None and first == prune_layer:
                x, positions, weights = x[:, rows], positions[..., rows], weights[:, rows]
            t = x.shape[1]
            p = cache[first][0].shape[2] if first in cache else 0
            feeds = {"hidden_states": x, "position_ids": positions, "query_weights": weights,
                     "attention_mask": np.ones((1, p + t), dtype=np.int64)}
            for layer in range(first, end):
                empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
                k, v = cache.get(layer, (empty, empty))
                feeds[f"past_key_{layer}"], feeds[f"past_value_{layer}"] = k, v
            last = end == self.segments[-1][1]
            if last:
                feeds["logit_rows"] = np.array([t - 1], dtype=np.int64)
            outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
            for layer in range(first, end):
                cache[layer] = (outs[f"present_key_{layer}"], outs[f"present_value_{layer}"])
            step.received.append(outs["attention_received"][0])
            step.last.append(outs["attention_last"][0])
            if last:
                return outs["logits"][0, -1], step
            x = outs["hidden_out"]
        raise AssertionError("unreachable: the last segment returns")
