"""Qwen2.5-VL: export both roles of the tiny pair and check the packs (verification figures, contract I/O, the
host-computed vision inputs and M-RoPE positions against transformers' own code, the vision graph against
model.visual on more image sizes, the fixture's resized image rebuilding pixel_values, refusals)."""

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from checkpoint_edits import edited_checkpoint

EXPORT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXPORT_DIR))

import make_tiny_qwen25vl  # noqa: E402
from stitch_export.families import family_for  # noqa: E402
from stitch_export.families.internvl import synthetic_image  # noqa: E402
from stitch_export.families.qwen2_5_vl import (  # noqa: E402
    host_rope_positions,
    host_vision_position_ids,
    host_windows,
    rebuild_patches,
    smart_resize_size,
    transformers_pos_ids,
    transformers_rope_index,
    transformers_windows,
)
from stitch_export.family import Case, Unsupported  # noqa: E402
from stitch_export.pack import export_pack  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def qcheckpoints(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qwen25vl-checkpoints")
    make_tiny_qwen25vl.main_into(out)
    return out


@pytest.fixture(scope="module")
def qpacks(qcheckpoints, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("qwen25vl-packs")
    return {
        role: (out / role, export_pack(qcheckpoints / role, role, out / role, split, log=lambda *a: None))
        for role, split in (("small", []), ("large", [1, 2]))
    }


def test_verification_passes_for_both_roles(qpacks):
    for role, (_, manifest) in qpacks.items():
        figures = manifest["provenance"]["verification"]
        assert figures["tokens_equal"], role
        assert figures["vision"] < 1e-4, figures
        assert figures["logits"] < 2e-4 and figures["pruned_logits"] < 2e-4, figures
        assert figures["attention_segment"] < 2e-4 and figures["attention_last"] < 2e-4, figures
        assert figures["pixels_rebuilt"] < 1e-5, figures
        assert figures["min_top2_gap"] > 10 * manifest["conformance"]["tolerance"]["logits"], figures


def test_manifest_follows_the_smart_resize_contract(qpacks, qcheckpoints):
    _, manifest = qpacks["large"]
    assert manifest["image"] == {
        "processor": "smart_resize", "patch_px": 14, "merge": 2, "temporal_patch": 2, "min_pixels": 3136,
        "max_pixels": 62720, "window_px": 112, "resample": "bicubic", "rescale": 1 / 255,
        "mean": make_tiny_qwen25vl.CLIP_MEAN, "std": make_tiny_qwen25vl.CLIP_STD}
    assert manifest["decoder"]["rope"] == {"theta": 1e6, "positions": "mrope", "mrope_section": [2, 3, 3]}
    prompt = manifest["prompt"]
    assert prompt["chat_template"] == make_tiny_qwen25vl.CHAT_TEMPLATE
    # The template itself writes "You are a helpful assistant." when there is no system message.
    assert prompt["default_system_prompt"] is None
    assert family_for(qcheckpoints / "large").template_system_prompt() == "You are a helpful assistant."
    assert prompt["image_placeholder"] == "<|image_pad|>"
    assert prompt["image_span"] == {"start": None, "context": "<|image_pad|>", "end": None}
    tok = family_for(qcheckpoints / "large").processor.tokenizer
    assert prompt["stop_token_ids"] == [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    assert manifest["vision"]["flops_per_token"] > 0


def test_graph_io_follows_the_contract(qpacks):
    pack, manifest = qpacks["large"]
    vision = ort.InferenceSession(str(pack / "vision.onnx"))
    assert [(i.name, i.type, i.shape) for i in vision.get_inputs()] == [
        ("pixel_values", "tensor(float)", ["P", 1176]), ("vision_position_ids", "tensor(int64)", ["P", 2]),
        ("window_index", "tensor(int64)", ["M"]), ("window_segments", "tensor(int64)", ["P"])]
    assert [(o.name, o.shape) for o in vision.get_outputs()] == [("visual_embeds", ["M", 96])]
    assert [(s["first_layer"], s["end_layer"]) for s in manifest["graphs"]["segments"]] == [(0, 1), (1, 2), (2, 4)]
    for segment in manifest["graphs"]["segments"]:
        session = ort.InferenceSession(str(pack / segment["file"]))
        positions = next(i for i in session.get_inputs() if i.name == "position_ids")
        assert positions.shape == [3, 1, "T"] and positions.type == "tensor(int64)"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_manifests_validate_against_the_zod_schema(qpacks):
    tsx = REPO / "node_modules" / ".bin" / "tsx"
    paths = [str(pack / "manifest.json") for pack, _ in qpacks.values()]
    result = subprocess.run([str(tsx), str(Path(__file__).parent / "validate_manifest.ts"), *paths],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout


GRIDS = [(4, 4), (8, 8), (16, 16), (6, 12), (30, 10), (4, 58), (50, 6), (18, 26), (2, 2), (10, 2)]


@pytest.mark.parametrize("gh, gw", GRIDS)
def test_host_vision_inputs_equal_transformers(qcheckpoints, gh, gw):
    config = family_for(qcheckpoints / "small").config
    grid = torch.tensor([[1, gh, gw]])
    assert np.array_equal(host_vision_position_ids(gh, gw, 2), transformers_pos_ids(grid, 2))
    index, segments = host_windows(gh, gw, 2, 112 // 28)
    t_index, t_segments = transformers_windows(grid, config.vision_config)
    assert np.array_equal(index, t_index) and np.array_equal(segments, t_segments)
    assert len(segments) == gh * gw and sorted(index.tolist()) == list(range(gh * gw // 4))


@pytest.mark.parametrize("before, after, gh, gw", [(1, 5, 4, 4), (3, 0, 8, 6), (20, 9, 30, 10), (7, 4, 6, 24)])
def test_host_rope_positions_equal_get_rope_index(qcheckpoints, before, after, gh, gw):
    config = family_for(qcheckpoints / "small").config
    n = gh * gw // 4
    ids = [5] * (before - 1) + [config.vision_start_token_id] * (before > 0) + [config.image_token_id] * n + [7] * after
    positions, delta = transformers_rope_index(config, ids, torch.tensor([[1, gh, gw]]))
    assert np.array_equal(positions, host_rope_positions(ids, before, gh, gw, 2))
    assert delta == positions.max() + 1 - len(ids)


@pytest.mark.parametrize("width, height", [(56, 56), (1000, 90), (90, 700), (300, 301), (2000, 1000), (450, 250)])
def test_vision_graph_equals_model_visual_on_more_sizes(qpacks, qcheckpoints, width, height):
    family = family_for(qcheckpoints / "small")
    model = family.load_model()
    case = Case("x", synthetic_image(width, height, 5), [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}])
    prepared = family.prepare(case)
    with torch.no_grad():
        expected = family.reference_visual(model, prepared).numpy()
    session = ort.InferenceSession(str(qpacks["small"][0] / "vision.onnx"))
    got = session.run(None, prepared.feeds())[0]
    assert got.shape == expected.shape == (prepared.visual_length, 64)
    assert np.abs(got - expected).max() < 1e-4


def decode_png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_fixture_records_what_transformers_computes(qpacks, qcheckpoints):
    family = family_for(qcheckpoints / "small")
    pack, manifest = qpacks["small"]
    fixture = json.loads((pack / "fixture.json").read_text())
    sizes = []
    for case in fixture["cases"]:
        image = Image.fromarray(decode_png(case["image_png_base64"]))
        prepared = family.prepare(Case(case["name"], image, case["messages"]))
        assert prepared.input_ids == case["input_ids"]
        resized = decode_png(case["resized_png_base64"])
        assert resized.shape[:2] == smart_resize_size(image.height, image.width, manifest["image"])
        rebuilt = rebuild_patches(resized, manifest["image"])
        assert np.abs(rebuilt - prepared.pixel_values.numpy()).max() < 1e-5
        t, gh, gw = case["grid_thw"]
        assert (t, gh * 14, gw * 14) == (1, *resized.shape[:2])
        assert case["visual_span"]["length"] == gh * gw // 4 == len(case["attention_received"])
        assert np.array_equal(case["vision_position_ids"], host_vision_position_ids(gh, gw, 2))
        index, segments = host_windows(gh, gw, 2, 4)
        assert case["window_index"] == index.tolist() and case["window_segments"] == segments.tolist()
        positions, delta = transformers_rope_index(family.config, case["input_ids"], torch.tensor([case["grid_thw"]]))
        assert case["position_ids"] == positions.tolist() and case["rope_delta"] == delta
        sizes.append((resized.shape[1], resized.shape[0]))
    assert sizes == [(224, 224), (336, 168), (140, 420)]
    assert fixture["cases"][1]["messages"][0]["role"] == "system" and len(fixture["cases"][1]["messages"]) == 4


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["text_config"].update(rope_scaling={"type": "linear", "factor": 2.0, "mrope_section": [2, 3, 3]}),
     "only M-RoPE"),
    (lambda c: c["text_config"].update(rope_scaling={"type": "mrope", "mrope_section": [2, 2, 2]}), "mrope_section"),
    (lambda c: c["text_config"].update(use_sliding_window=True, sliding_window=64, max_window_layers=0), "sliding-window"),
    (lambda c: c.update(architectures=["Qwen2VLForConditionalGeneration"]),
     "'Qwen2VLForConditionalGeneration' is not supported"),
    (lambda c: c["vision_config"].update(window_size=100), "window_size"),
])
def test_unsupported_checkpoints_are_refused(qcheckpoints, tmp_path, edit, message):
    with pytest.raises(Unsupported, match=message):
        export_pack(edited_checkpoint(qcheckpoints, tmp_path, edit), "small", tmp_path / "pack", [])


def test_videos_are_refused(qcheckpoints):
    family = family_for(qcheckpoints / "small")
    with pytest.raises(Unsupported, match="videos"):
        family.prepare(Case("v", synthetic_image(56, 56, 0), [{"role": "user", "content": [{"type": "video"}]}]))
