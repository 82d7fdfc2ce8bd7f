"""Export both roles of the tiny pair and check the packs: verification figures, contract I/O names, checksums,
schema, the fixture's pixel rebuild, external data, refusals."""

import base64
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from checkpoint_edits import edited_checkpoint

from stitch_export.__main__ import main as cli
from stitch_export.families import family_for
from stitch_export.family import Case, Unsupported
from stitch_export.pack import export_pack
from stitch_export.verify import rebuild_pixels

REPO = Path(__file__).resolve().parents[2]


def test_verification_passes_for_both_roles(packs):
    for role, (_, manifest) in packs.items():
        figures = manifest["provenance"]["verification"]
        assert figures["tokens_equal"], role
        assert figures["logits"] < 2e-4 and figures["pruned_logits"] < 2e-4, figures
        assert figures["attention_segment"] < 2e-4 and figures["attention_last"] < 2e-4, figures
        assert figures["tokens_compared"] > 0 and figures["tokens_equal"], figures


def test_segments_and_graph_io_follow_the_contract(packs):
    pack, manifest = packs["large"]
    assert [(s["first_layer"], s["end_layer"]) for s in manifest["graphs"]["segments"]] == [(0, 1), (1, 2), (2, 4)]
    last = ort.InferenceSession(str(pack / "decoder-2-4.onnx"))
    assert [i.name for i in last.get_inputs()] == [
        "hidden_states", "position_ids", "attention_mask", "query_weights",
        "past_key_2", "past_value_2", "past_key_3", "past_value_3", "logit_rows"]
    assert [o.name for o in last.get_outputs()] == [
        "logits", "present_key_2", "present_value_2", "present_key_3", "present_value_3",
        "attention_received", "attention_last"]
    middle = ort.InferenceSession(str(pack / "decoder-1-2.onnx"))
    assert middle.get_outputs()[0].name == "hidden_out"


def test_checksums_cover_every_listed_file(packs):
    from stitch_export.onnx_io import sha256
    for pack, manifest in packs.values():
        graphs = manifest["graphs"]
        listed = {graphs["vision"], graphs["embed"], *(s["file"] for s in graphs["segments"]),
                  *graphs["external_data"], "tokenizer.json", "fixture.json"}
        assert set(manifest["checksums"]) == listed
        assert all(sha256(pack / f) == digest for f, digest in manifest["checksums"].items())


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_manifests_validate_against_the_zod_schema(packs):
    tsx = REPO / "node_modules" / ".bin" / "tsx"
    paths = [str(pack / "manifest.json") for pack, _ in packs.values()]
    result = subprocess.run([str(tsx), str(Path(__file__).parent / "validate_manifest.ts"), *paths],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout


def decode_png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_fixture_tiles_rebuild_the_processors_pixel_values(packs, checkpoints):
    family = family_for(checkpoints / "small")
    pack, manifest = packs["small"]
    fixture = json.loads((pack / "fixture.json").read_text())
    worst = 0.0
    for case in fixture["cases"]:
        image = Image.fromarray(decode_png(case["image_png_base64"]))
        prepared = family.prepare(Case(case["name"], image, case["messages"]))
        assert prepared.input_ids == case["input_ids"]
        rebuilt = rebuild_pixels([decode_png(t) for t in case["tiles_png_base64"]], manifest["image"])
        worst = max(worst, float(np.abs(rebuilt - prepared.pixel_values.numpy()).max()))
    print(f"max |rebuilt - processor pixel_values| = {worst:.3g}")
    assert worst < 1e-5


def test_fixture_cases_cover_the_tilings(packs):
    fixture = json.loads((packs["large"][0] / "fixture.json").read_text())
    assert [len(c["tiles_png_base64"]) for c in fixture["cases"]] == [1, 3, 4]
    for case in fixture["cases"]:
        assert case["visual_span"]["length"] == 256 * len(case["tiles_png_base64"])
        assert case["pruned"]["layer"] == 1
        assert len(case["attention_received"]) == case["visual_span"]["length"]


def test_external_data_always_loads_in_onnxruntime(checkpoints, tmp_path):
    manifest = export_pack(checkpoints / "small", "small", tmp_path, [], external_data="always", log=lambda *a: None)
    data = manifest["graphs"]["external_data"]
    assert "decoder-0-2.onnx.data" in data and all((tmp_path / f).is_file() for f in data)
    assert (tmp_path / "decoder-0-2.onnx").stat().st_size < 100_000  # the weights live in the .data file
    ort.InferenceSession(str(tmp_path / "decoder-0-2.onnx"))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(architectures=["LlavaForConditionalGeneration"]), "architecture 'LlavaForConditionalGeneration' is not supported"),
    (lambda c: c["text_config"].update(rope_scaling={"rope_type": "linear", "factor": 2.0}), "rope_scaling"),
    (lambda c: c["text_config"].update(use_sliding_window=True, sliding_window=64, max_window_layers=0), "sliding-window"),
    (lambda c: c["text_config"].update(model_type="mistral"), "text model_type 'mistral' is not supported"),
    (lambda c: c.update(vision_feature_layer=-2), "vision_feature_layer"),
    (lambda c: c.update(vision_feature_select_strategy="full"), "vision_feature_select_strategy"),
])
def test_unsupported_checkpoints_are_refused(checkpoints, tmp_path, edit, message):
    with pytest.raises(Unsupported, match=message):
        export_pack(edited_checkpoint(checkpoints, tmp_path, edit), "small", tmp_path / "pack", [])


def test_cli_refuses_with_a_clear_message(checkpoints, tmp_path, capsys):
    assert cli(["--checkpoint", str(checkpoints / "small"), "--role", "small", "--out", str(tmp_path),
                "--split-layers", "5"]) == 2
    assert "split_layers [5]" in capsys.readouterr().err


def test_a_segment_exported_one_layer_at_a_time_computes_what_the_whole_segment_does(checkpoints, packs, tmp_path):
    """--piece-mb 0 traces every layer alone and chains them: the chained graph answers the same feeds as the
    one-piece graph (same ops, same weights), its tensors lie page-aligned in the segment's one data file, and the
    pack verifies against transformers."""
    manifest = export_pack(checkpoints / "large", "large", tmp_path, [1, 2], external_data="always", piece_mb=0,
                           log=lambda *a: None)
    assert manifest["provenance"]["verification"]["tokens_equal"]
    whole = ort.InferenceSession(str(packs["large"][0] / "decoder-2-4.onnx"))
    chained = ort.InferenceSession(str(tmp_path / "decoder-2-4.onnx"))
    assert [i.name for i in chained.get_inputs()] == [i.name for i in whole.get_inputs()]
    assert [o.name for o in chained.get_outputs()] == [o.name for o in whole.get_outputs()]
    rng = np.random.default_rng(0)
    cfg = manifest["decoder"]
    t, p = 5, 3
    feeds = {"hidden_states": rng.standard_normal((1, t, cfg["hidden"]), dtype=np.float32),
             "position_ids": np.arange(p, p + t, dtype=np.int64)[None], "attention_mask": np.ones((1, p + t), np.int64),
             "query_weights": np.ones((1, t), np.float32), "logit_rows": np.array([t - 1], np.int64)}
    for layer in (2, 3):
        for kind in ("key", "value"):
            feeds[f"past_{kind}_{layer}"] = rng.standard_normal((1, cfg["kv_heads"], p, cfg["head_dim"]),
                                                                 dtype=np.float32)
    for a, b, name in zip(whole.run(None, feeds), chained.run(None, feeds), [o.name for o in whole.get_outputs()]):
        assert np.abs(a - b).max() < 1e-5, name
    model = onnx.load(str(tmp_path / "decoder-2-4.onnx"), load_external_data=False)
    offsets = [int(e.value) for t in model.graph.initializer for e in t.external_data if e.key == "offset"]
    assert offsets and all(o % 4096 == 0 for o in offsets)
    locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"decoder-2-4.onnx.data"}


def test_a_checkpoint_missing_a_tensor_is_refused_before_anything_is_written(checkpoints, tmp_path):
    target = tmp_path / "partial"
    shutil.copytree(checkpoints / "small", target)
    tensors = load_file(target / "model.safetensors")
    dropped = next(k for k in tensors if "layers.1.mlp.up_proj" in k)
    del tensors[dropped]
    save_file(tensors, target / "model.safetensors")
    with pytest.raises(Unsupported, match="lacks 1 of the model's tensors"):
        export_pack(target, "small", tmp_path / "pack", [])
    assert not (tmp_path / "pack").exists()
