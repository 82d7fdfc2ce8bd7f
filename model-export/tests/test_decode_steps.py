"""The decode_steps graph against the step-by-step segment graphs it replaces: same tokens, probabilities, present
K/V and per-query attention sums, on a pruned large pack (each segment's past of a different length), in float32 and
int8, int4 and float16; its weights shared with the segments' data files; M-RoPE refused."""

import numpy as np
import onnx
import pytest

from stitch_export import decode_steps_check
from stitch_export.decode_steps_check import decode_steps_outputs, step_by_step
from stitch_export.family import Unsupported
from stitch_export.pack import export_pack
from stitch_export.runtime import PackRunner

K = 4
# float32: the same ops in another graph, rounding only; int8 and int4 (activations quantized per call alike in
# both graphs) likewise: all measured bit-equal but the probabilities (float32 softmax, ≤ 1e-8). float16: a few
# float16 ulps (0.0039 measured; decode_steps_check.LIMITS).
TOLERANCE = {"float32": 1e-5, "int8": 1e-5, "int4": 1e-5, "float16": 1e-2}


@pytest.fixture(scope="module", params=["float32", "int8", "int4", "float16"])
def decode_pack(request, checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"decode-{request.param}")
    manifest = export_pack(checkpoints / "large", "large", out, [1, 2], external_data="always", dtype=request.param,
                           decode_steps=K, cases=1, log=lambda *a: None)
    return out, manifest


def test_the_graph_decodes_what_the_segment_graphs_decode_step_by_step(decode_pack):
    pack, manifest = decode_pack
    tol = TOLERANCE[manifest["weights"]["dtype"]]
    runner = PackRunner(pack, manifest)
    past, first, position, tokens, probabilities, received, cache = step_by_step(runner, manifest, K)
    assert manifest["graphs"]["decode_steps"] == {"file": "decode-steps.onnx", "steps": K}
    out = decode_steps_outputs(pack, manifest, past, first, position)
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


def test_the_export_records_its_own_check_of_the_graph(decode_pack):
    _, manifest = decode_pack
    figures = manifest["provenance"]["verification"]["decode_steps"]
    assert set(figures) == {"probabilities", "present", "attention"}
    assert max(figures.values()) <= TOLERANCE[manifest["weights"]["dtype"]]


def test_a_graph_that_disagrees_with_single_steps_is_refused(decode_pack, monkeypatch):
    """The export-time check fails on a graph whose outputs are off (here: one attention entry, by 0.1)."""
    pack, manifest = decode_pack
    real = decode_steps_check.decode_steps_outputs

    def off(*args):
        out = real(*args)
        rows = out["attention_received_0"].copy()
        rows[0, 0] += 0.1
        return out | {"attention_received_0": rows}

    monkeypatch.setattr(decode_steps_check, "decode_steps_outputs", off)
    with pytest.raises(decode_steps_check.DecodeStepsMismatch, match="differs from single steps"):
        decode_steps_check.compare(PackRunner(pack, manifest), pack, manifest)


def test_with_inline_weights_the_graph_carries_its_own(checkpoints, tmp_path):
    """A tiny pack keeps its weights inside the graphs (external data "auto"): nothing to share, the decode_steps
    graph holds its own copy inline and still passes the export's check."""
    manifest = export_pack(checkpoints / "small", "small", tmp_path, [], decode_steps=2, cases=1, log=lambda *a: None)
    assert manifest["graphs"]["external_data"] == []
    assert manifest["graphs"]["decode_steps"] == {"file": "decode-steps.onnx", "steps": 2}
    model = onnx.load(str(tmp_path / "decode-steps.onnx"), load_external_data=False)
    assert not any(t.external_data for t in model.graph.initializer)
    assert max(manifest["provenance"]["verification"]["decode_steps"].values()) <= TOLERANCE["float32"]
