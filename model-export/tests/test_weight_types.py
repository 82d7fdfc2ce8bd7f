"""Weight types: an int4 export of the tiny small model (verified against transformers' float32 by export_pack
itself; the committed fixtures test/fixtures/packs/internvl3-tiny-large-{float16,int8,int4} were exported the same
way), the int8 and float16 rewrites of its graphs, the hand-written embedding quantizer, the token rule at
near-ties, and the refusal of bfloat16."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from stitch_export.__main__ import main as cli
from stitch_export.pack import export_pack
from stitch_export.verify import Verifier, VerificationError
from stitch_export.weights import convert, quantize_gathers

@pytest.fixture(scope="module")
def quantized(checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("int4")
    return "int4", out, export_pack(checkpoints / "small", "small", out, [], log=lambda *a: None, dtype="int4")


def ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_quantized_export_records_its_type_and_errors(quantized, packs):
    dtype, pack, manifest = quantized
    assert manifest["weights"] == {"dtype": dtype, "block_size": 32}
    assert manifest["decoder"]["dtype"] == "float32"  # the graphs' inputs and outputs keep the contract's type
    figures = manifest["provenance"]["verification"]
    print(dtype, json.dumps(figures))
    float32 = packs["small"][1]["provenance"]["verification"]
    # Quantized weights err more than float32 rounding, and the stated tolerance covers what was measured.
    assert figures["logits"] > 100 * float32["logits"]
    tolerance = manifest["conformance"]["tolerance"]
    assert max(figures["logits"], figures["pruned_logits"]) <= tolerance["logits"]
    assert figures["attention_received"] <= tolerance["attention"]
    fixture = json.loads((pack / "fixture.json").read_text())
    assert fixture["onnxruntime_tolerance"]["logits"] >= figures["rounding_logits"]
    for case in fixture["cases"]:  # transformers' values, and the pack's own onnxruntime outputs beside them
        assert len(case["gaps"]) == len(case["tokens"]) and len(case["onnxruntime"]["gaps"]) == len(case["tokens"])


def float_weights_left(model: onnx.ModelProto) -> list[str]:
    """MatMul and Gather nodes that still read a float32 weight."""
    floats = {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    return [n.name for n in model.graph.node
            if (n.op_type == "MatMul" and n.input[1] in floats) or (n.op_type == "Gather" and n.input[0] in floats)]


def test_int4_graphs_are_smaller_and_use_the_types_kernels(quantized, packs):
    dtype, pack, _ = quantized
    float32_pack = packs["small"][0]
    for graph in ("vision.onnx", "embed.onnx", "decoder-0-2.onnx"):
        assert not float_weights_left(onnx.load(str(pack / graph))), graph
    assert "MatMulNBits" in ops(pack / "decoder-0-2.onnx") and "MatMulNBits" in ops(pack / "vision.onnx")
    assert "GatherBlockQuantized" in ops(pack / "embed.onnx")
    # The tiny vision tower's weights are mostly its position table and patch convolution, which stay float32.
    for graph in ("embed.onnx", "decoder-0-2.onnx"):
        ratio = (pack / graph).stat().st_size / (float32_pack / graph).stat().st_size
        print(dtype, graph, f"{ratio:.2f} of float32")
        assert ratio < 0.3, graph


@pytest.mark.parametrize("dtype, kernel", [("int8", "DynamicQuantizeLinear"), ("float16", "Cast")])
def test_int8_and_float16_graphs_run_with_float32_inputs_and_outputs(packs, dtype, kernel):
    pack = packs["small"][0]
    model = convert(onnx.load(str(pack / "decoder-0-2.onnx")), dtype)
    assert kernel in {n.op_type for n in model.graph.node}
    if dtype == "int8":
        assert not float_weights_left(model)
        assert not float_weights_left(convert(onnx.load(str(pack / "embed.onnx")), dtype))
    session = ort.InferenceSession(model.SerializeToString())
    assert all(o.type == "tensor(float)" for o in [*session.get_outputs(), *session.get_inputs()]
               if o.name not in ("position_ids", "attention_mask", "logit_rows"))
    t, empty = 4, np.zeros((1, 2, 0, 16), np.float32)
    feeds = {"hidden_states": np.random.default_rng(0).standard_normal((1, t, 64)).astype(np.float32),
             "position_ids": np.arange(t)[None], "attention_mask": np.ones((1, t), np.int64),
             "query_weights": np.ones((1, t), np.float32), "logit_rows": np.array([t - 1])}
    feeds |= {f"past_{kind}_{layer}": empty for kind in ("key", "value") for layer in (0, 1)}
    ours = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    theirs = dict(zip([o.name for o in session.get_outputs()],
                      ort.InferenceSession(str(pack / "decoder-0-2.onnx")).run(None, feeds)))
    # Each query's attention sums to 1 over the keys, in every layer and head: 2 layers × 4 heads × 4 queries.
    assert abs(float(ours["attention_received"].sum()) - 32) < 1e-4
    assert np.abs(ours["logits"] - theirs["logits"]).max() < 0.5 * np.abs(theirs["logits"]).max()


def test_float16_keeps_softmax_and_the_attention_sums_in_float32(packs):
    model = convert(onnx.load(str(packs["small"][0] / "decoder-0-2.onnx")), "float16")
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    nodes = list(model.graph.node)
    softmax = [n for n in nodes if n.op_type == "Softmax"]
    assert softmax and all(types[n.input[0]] == TensorProto.FLOAT and types[n.output[0]] == TensorProto.FLOAT
                           for n in softmax)
    weights = {t.name: t.data_type for t in model.graph.initializer}
    matmuls = [n for n in nodes if n.op_type == "MatMul" and n.input[1] in weights]
    assert matmuls and all(weights[n.input[1]] == TensorProto.FLOAT16 for n in matmuls)
    assert all(types[o.name] in (TensorProto.FLOAT, TensorProto.INT64) for o in model.graph.output)
    producer = {o: n for n in nodes for o in n.output}
    for name in ("attention_received", "attention_last"):  # the sums are float32 up to the Softmax
        stack = [name]
        while stack:
            n = producer.get(stack.pop())
            if n is None or n.op_type == "Softmax":
                continue
            assert all(types.get(o, TensorProto.FLOAT) != TensorProto.FLOAT16 for o in n.output), (name, n.name)
            stack += list(n.input)


@pytest.mark.parametrize("bits", [8, 4])
def test_embedding_quantizer_rounds_each_value_to_its_block(bits):
    table = np.random.default_rng(bits).standard_normal((50, 64)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["y"])], "embed",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "T"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(table, "table")])
    model = quantize_gathers(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), bits, 32)
    rows = np.array([[0, 7, 49]])
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"ids": rows})[0][0]
    blocks = table[rows[0]].reshape(3, 2, 32)
    step = (np.maximum(blocks.max(-1), 0) - np.minimum(blocks.min(-1), 0)) / ((1 << bits) - 1)
    error = np.abs(got.reshape(3, 2, 32) - blocks)
    assert (error <= step[..., None] / 2 + 1e-6).all()  # round to nearest: half a step at most
    assert error.max() > step.max() / 10  # and it did quantize


def test_a_near_tie_compares_logits_not_tokens():
    verifier = Verifier.__new__(Verifier)
    verifier.dtype, verifier.scales = "float32", {}
    verifier.figures = {k: 0.0 for k in ("vision", "logits", "attention_segment", "attention_last",
                                         "attention_received", "pruned_logits", "pixels_rebuilt")}
    verifier.figures |= {"min_top2_gap": np.inf, "tokens_compared": 0, "near_ties": 0, "tokens_equal": True}
    verifier.figures["logits"] = 3e-6  # tolerance 5e-5
    verifier.steps = [("clear", 0.5, 7, 7), ("near-tie", 5e-5, 8, 9)]
    assert verifier.tolerances()["logits"] == 5e-5
    assert verifier.figures["tokens_compared"] == 1 and verifier.figures["near_ties"] == 1
    verifier.steps.append(("clear but different", 0.5, 3, 4))
    with pytest.raises(VerificationError, match="clear but different: onnxruntime's token 3 ≠ transformers' 4"):
        verifier.tolerances()


def test_bfloat16_is_refused_with_its_reason(checkpoints, tmp_path, capsys):
    assert cli(["--checkpoint", str(checkpoints / "small"), "--role", "small", "--out", str(tmp_path),
                "--dtype", "bfloat16"]) == 2
    assert "no bfloat16 kernels" in capsys.readouterr().err
