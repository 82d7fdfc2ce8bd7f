"""The decode_steps graph against the step-by-step segment graphs it replaces: same tokens, probabilities, present
K/V and per-query attention sums, on a pruned large pack (each segment's past of a different length), in float32 and
int8; its weights shared with the segments' data files; M-RoPE refused."""

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from stitch_export.family import Unsupported
from stitch_export.pack import export_pack
from stitch_export.runtime import PackRunner

K = 4
# float32: the same ops in another graph, rounding only. int8: onnxruntime quantizes activations per call the same
# way in both graphs, so the same bound holds up to summation order.
TOLERANCE = {"float32": 1e-5, "int8": 1e-4}


def softmax_probability(logits: np.ndarray, token: int) -> float:
    z = np.exp(logits.astype(np.float64) - logits.max())
    return float(z[token] / z.sum())


def step_by_step(runner: PackRunner, pack, manifest, steps: int):
    """Prefill a prompt with the visual rows pruned at layer 1 (so layers 1+ hold fewer columns), then `steps` greedy
    steps with the segment graphs; returns the cache after prefill, the first token and what each step gave."""
    d = manifest["decoder"]
    rng = np.random.default_rng(1)
    s, offset, n = 12, 2, 6
    x = rng.standard_normal((1, s, d["hidden"]), dtype=np.float32)
    positions = np.arange(s, dtype=np.int64)[None]
    weights = (np.arange(s) >= offset + n).astype(np.float32)[None]
    rows = np.array([i for i in range(s) if not offset <= i < offset + n or i - offset in (1, 4)])
    cache: dict = {}
    logits, _ = runner.call(x, positions, weights, cache, 1, rows)
    after_prefill = copy.deepcopy(cache)
    token = int(np.argmax(logits))
    first, tokens, probabilities, received = token, [], [], []
    for i in range(steps):
        emb = runner.embed.run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
        logits, step = runner.call(emb, np.array([[s + i]], dtype=np.int64), np.ones((1, 1), np.float32), cache,
                                   None, None)
        token = int(np.argmax(logits))
        tokens.append(token)
        probabilities.append(softmax_probability(logits, token))
        received.append(step.received)
    return after_prefill, first, s, tokens, probabilities, received, cache


@pytest.fixture(scope="module", params=["float32", "int8"])
def decode_pack(request, checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"decode-{request.param}")
    manifest = export_pack(checkpoints / "large", "large", out, [1, 2], external_data="always", dtype=request.param,
                           decode_steps=K, cases=1, log=lambda *a: None)
    return out, manifest


def test_the_graph_decodes_what_the_segment_graphs_decode_step_by_step(decode_pack):
    pack, manifest = decode_pack
    tol = TOLERANCE[manifest["weights"]["dtype"]]
    runner = PackRunner(pack, manifest)
    past, first, position, tokens, probabilities, received, cache = step_by_step(runner, pack, manifest, K)
    graph = manifest["graphs"]["decode_steps"]
    assert graph == {"file": "decode-steps.onnx", "steps": K}
    session = ort.InferenceSession(str(pack / graph["file"]), providers=["CPUExecutionProvider"])
    feeds = {"token_id": np.array([first], np.int64), "position": np.array([position], np.int64)}
    for layer, (k, v) in past.items():
        feeds[f"past_key_{layer}"], feeds[f"past_value_{layer}"] = k, v
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert out["token_ids"].tolist() == tokens
    assert np.abs(out["probabilities"] - np.array(probabilities)).max() < tol
    for layer, (k, v) in cache.items():
        assert out[f"present_key_{layer}"].shape == k.shape
        assert np.abs(out[f"present_key_{layer}"] - k).max() < tol
        assert np.abs(out[f"present_value_{layer}"] - v).max() < tol
    for s, seg in enumerate(manifest["graphs"]["segments"]):
        rows = out[f"attention_received_{seg['first_layer']}"]
        columns = past[seg["first_layer"]][0].shape[2]
        assert rows.shape == (K, columns + K)
        for i in range(K):  # step i's graph reports P_s + i + 1 keys; the row is zero after them
            assert np.abs(rows[i, :columns + i + 1] - received[i][s]).max() < tol
            assert not rows[i, columns + i + 1:].any()


def test_the_graph_reads_the_segments_weights_instead_of_a_copy(decode_pack):
    pack, manifest = decode_pack
    assert "decode-steps.onnx.data" not in manifest["graphs"]["external_data"]
    assert not (pack / "decode-steps.onnx.data").exists()
    assert "decode-steps.onnx" in manifest["checksums"]
    model = onnx.load(str(pack / "decode-steps.onnx"), load_external_data=False)
    locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"embed.onnx.data", "decoder-0-1.onnx.data", "decoder-1-2.onnx.data", "decoder-2-4.onnx.data"}
    inline = sum(len(t.raw_data) for t in model.graph.initializer)
    assert inline < 4096  # constants only


def test_decode_steps_is_refused_for_m_rope_and_below_two(checkpoints, tmp_path):
    from stitch_export.decode_steps import check_decode_steps
    from transformers import Qwen2_5_VLTextConfig

    with pytest.raises(Unsupported, match="M-RoPE"):
        check_decode_steps(Qwen2_5_VLTextConfig(hidden_size=64, num_attention_heads=4,
                                                rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}), 4)
    with pytest.raises(Unsupported, match="at least 2"):
        export_pack(checkpoints / "small", "small", tmp_path, [], decode_steps=1)
