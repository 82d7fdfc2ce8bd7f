"""The written decode_steps graph against the pack's own step-by-step segment graphs (onnxruntime both): a prompt
of random hidden states with visual rows pruned at the first split layer (so each segment's cache has its own
length), then K single steps and one run of the graph from the same cache. The graph must pick the same tokens and
give the same probabilities, present K/V and per-query attention rows within LIMIT; else the pack is not written."""

import copy
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .runtime import PackRunner

# The same ops on the same weights in another graph: rounding only. Measured on the tiny large pack: float32 ≤ 1e-8
# (probabilities; present K/V and attention bit-equal), int8 and int4 bit-equal, float16 0.0039 (present K/V: one
# or two float16 ulps; where onnxruntime rounds the unrolled graph's float16 intermediates differently was not
# found). Beyond these it is a bug.
LIMITS = {"float16": 1e-2}
LIMIT = 1e-3


class DecodeStepsMismatch(AssertionError):
    pass


def softmax_probability(logits: np.ndarray, token: int) -> float:
    z = np.exp(logits.astype(np.float64) - logits.max())
    return float(z[token] / z.sum())


def step_by_step(runner: PackRunner, manifest: dict, steps: int, seed: int = 1):
    """Prefill then `steps` greedy single steps; returns (cache after prefill, the token fed first, its position,
    the tokens, their probabilities, each step's per-segment attention_received, the final cache)."""
    d = manifest["decoder"]
    rng = np.random.default_rng(seed)
    s, offset, n = 12, 2, 6
    x = rng.standard_normal((1, s, d["hidden"]), dtype=np.float32)
    positions = np.arange(s, dtype=np.int64)[None]
    weights = (np.arange(s) >= offset + n).astype(np.float32)[None]
    split = manifest["split_layers"]
    prune_layer = split[0] if split else 0
    rows = np.array([i for i in range(s) if not offset <= i < offset + n or i - offset in (1, 4)])
    cache: dict = {}
    logits, _ = runner.call(x, positions, weights, cache, prune_layer, rows)
    after_prefill = copy.deepcopy(cache)
    token = first = int(np.argmax(logits))
    tokens, probabilities, received = [], [], []
    for i in range(steps):
        emb = runner.embed.run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
        logits, step = runner.call(emb, np.array([[s + i]], dtype=np.int64), np.ones((1, 1), np.float32), cache,
                                   None, None)
        token = int(np.argmax(logits))
        tokens.append(token)
        probabilities.append(softmax_probability(logits, token))
        received.append(step.received)
    return after_prefill, first, s, tokens, probabilities, received, cache


def decode_steps_outputs(pack_dir: Path, manifest: dict, past: dict, token: int, position: int) -> dict:
    graph = manifest["graphs"]["decode_steps"]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(Path(pack_dir) / graph["file"]), opts, providers=["CPUExecutionProvider"])
    feeds = {"token_id": np.array([token], np.int64), "position": np.array([position], np.int64)}
    for layer, (k, v) in past.items():
        feeds[f"past_key_{layer}"], feeds[f"past_value_{layer}"] = k, v
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def compare(runner: PackRunner, pack_dir: Path, manifest: dict) -> dict:
    """The figures ({probabilities, present, attention}: largest |difference|); raises DecodeStepsMismatch."""
    k = manifest["graphs"]["decode_steps"]["steps"]
    past, first, position, tokens, probabilities, received, cache = step_by_step(runner, manifest, k)
    out = decode_steps_outputs(pack_dir, manifest, past, first, position)
    if out["token_ids"].tolist() != tokens:
        raise DecodeStepsMismatch(f"decode_steps picked {out['token_ids'].tolist()}, single steps {tokens}")
    figures = {"probabilities": float(np.abs(out["probabilities"] - np.array(probabilities)).max()),
               "present": 0.0, "attention": 0.0}
    for layer, (key, value) in cache.items():
        for name, ref in ((f"present_key_{layer}", key), (f"present_value_{layer}", value)):
            if out[name].shape != ref.shape:
                raise DecodeStepsMismatch(f"{name}: shape {out[name].shape}, single steps {ref.shape}")
            figures["present"] = max(figures["present"], float(np.abs(out[name] - ref).max()))
    for s, seg in enumerate(manifest["graphs"]["segments"]):
        rows = out[f"attention_received_{seg['first_layer']}"]
        columns = past[seg["first_layer"]][0].shape[2]
        if rows.shape != (k, columns + k):
            raise DecodeStepsMismatch(f"attention_received_{seg['first_layer']}: shape {rows.shape}")
        for i in range(k):  # step i reports P_s + i + 1 keys; the row is zero after them
            if rows[i, columns + i + 1:].any():
                raise DecodeStepsMismatch(f"attention_received_{seg['first_layer']} row {i}: not zero after its keys")
            figures["attention"] = max(figures["attention"],
                                       float(np.abs(rows[i, :columns + i + 1] - received[i][s]).max()))
    worst, limit = max(figures.values()), LIMITS.get(manifest["weights"]["dtype"], LIMIT)
    if not worst <= limit:
        raise DecodeStepsMismatch(f"decode_steps differs from single steps by {worst} (> {limit}): {figures}")
    return figures
