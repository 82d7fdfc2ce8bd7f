"""Record transformers' Qwen2(.5)-VL preprocessing and positions as the reference for the TypeScript ports.

Run from the repo root with the exporter venv:

    .venv-export/bin/python model-export/record_qwen_vl_reference.py

Writes three small fixtures (transformers 4.57.1; every value comes from transformers' own functions, called on
real inputs, never re-derived here):

- gpu-worker/engine/image-processor/smart-resize-cases.json: `smart_resize` for many (height, width) pairs under
  several (factor, min_pixels, max_pixels) settings, incl. exact halves (Python's round is half-to-even), tiny and
  huge sides, the min/max clamps and the aspect ratios it refuses (> 200).
- gpu-worker/engine/image-processor/qwen-vl-photos.json: what the slow `Qwen2VLImageProcessor` (PIL bicubic,
  Qwen2.5-VL's mean/std) makes of each photo in test/fixtures/photos at a small max_pixels (and, for the small
  photos, a large min_pixels, which enlarges): the resized size, image_grid_thw, a strided sample of the uint8
  resized image *before* rescale, and sha256s of that image and of pixel_values. For one photo the whole resized
  image is stored, so the TS test can patchify transformers' own resized image and compare with pixel_values bit
  for bit; plus a synthetic image whose size smart_resize keeps (PIL's resize is then a copy).
  The script asserts pixel_values == patchify(table[resized image]) bit for bit for every photo, with the resized
  image made by the same `resize` call `_preprocess` makes.
- gpu-worker/engine/image-processor/vision-inputs-cases.json: `Qwen2_5_VisionTransformerPretrainedModel`'s
  `rot_pos_emb` pos_ids (recovered by giving it an identity frequency table, so the real function runs) and
  `get_window_index` (window_index, cu_window_seqlens, then torch.unique_consecutive as forward does) for grids
  divisible and not divisible by the window, and the window id of every patch in the reordered order.
- gpu-worker/engine/positions/mrope-cases.json: `Qwen2_5_VLModel.get_rope_index` (and Qwen2-VL's) on prompts with
  one image (text before, the image tokens, text after) and with none, built on a minimal config.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import transformers
from PIL import Image
from transformers.image_transforms import resize
from transformers.image_utils import ChannelDimension, PILImageResampling
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLModel,
)
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor, smart_resize
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "test/fixtures/photos"
IMAGE_DIR = ROOT / "gpu-worker/engine/image-processor"
POSITIONS_DIR = ROOT / "gpu-worker/engine/positions"

# Qwen2.5-VL's preprocessor_config.json (all sizes): OpenAI CLIP mean/std, 14-px patches, 2x2 merge, 2 frames.
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
PATCH, MERGE, TEMPORAL = 14, 2, 2
FACTOR = PATCH * MERGE
SOURCE = f"transformers {transformers.__version__}; written by model-export/record_qwen_vl_reference.py"

# photos: a small max_pixels (64 tokens at most) shrinks every photo; a large min_pixels enlarges the small ones
PHOTO_SETTINGS = {
    "shrink": {"min_pixels": 56 * 56, "max_pixels": FACTOR * FACTOR * 64},
    "enlarge": {"min_pixels": FACTOR * FACTOR * 128, "max_pixels": FACTOR * FACTOR * 256},
}
ENLARGED = {"astronaut-small-200x150.jpg", "chelsea-near-square-301x290.jpg", "rocket-tall-142x427.jpg", "coffee-strip-600x50.jpg"}
# every 7th row and column of the resized image plus the last one
SAMPLE_STRIDE = 7
# the one photo stored whole (at a tiny max_pixels) for the bit-exact patchify check
WHOLE = ("chelsea.jpg", {"min_pixels": 56 * 56, "max_pixels": FACTOR * FACTOR * 6})


def processor(min_pixels: int, max_pixels: int) -> Qwen2VLImageProcessor:
    return _checked(Qwen2VLImageProcessor(
        do_resize=True,
        # not size={...}: in 4.57.1 __init__ replaces any valid `size` by the default (its if/else is inverted);
        # only min_pixels / max_pixels reach the processor. Checked below.
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        resample=PILImageResampling.BICUBIC,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=MEAN,
        image_std=STD,
        do_convert_rgb=True,
        patch_size=PATCH,
        temporal_patch_size=TEMPORAL,
        merge_size=MERGE,
    ), min_pixels, max_pixels)


def _checked(proc: Qwen2VLImageProcessor, min_pixels: int, max_pixels: int) -> Qwen2VLImageProcessor:
    assert proc.size == {"shortest_edge": min_pixels, "longest_edge": max_pixels}, proc.size
    return proc


def tables(proc: Qwen2VLImageProcessor) -> np.ndarray:
    """pixel value of each byte value per channel, by the processor's own rescale + normalize: 3 x 256 float32."""
    u = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None], (256, 3))[None].copy()
    x = proc.rescale(u, scale=1 / 255, input_data_format=ChannelDimension.LAST)
    x = proc.normalize(x, mean=MEAN, std=STD, input_data_format=ChannelDimension.LAST)
    assert x.dtype == np.float32
    return x[0].T.copy()


def patchify_reference(resized: np.ndarray, table: np.ndarray) -> np.ndarray:
    """flatten_patches from the uint8 HWC image, written with _preprocess's own reshape/transpose."""
    chw = np.stack([table[c][resized[..., c]] for c in range(3)])  # 3 x H x W float32
    patches = np.stack([chw] * TEMPORAL)  # the still image repeated to temporal_patch frames
    gh, gw = resized.shape[0] // PATCH, resized.shape[1] // PATCH
    p = patches.reshape(1, TEMPORAL, 3, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    p = p.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return p.reshape(gh * gw, 3 * TEMPORAL * PATCH * PATCH)


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def run_processor(rgb: np.ndarray, setting: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixel_values, grid_thw, the uint8 resized image _preprocess rescaled)."""
    proc = processor(**setting)
    out = proc.preprocess(rgb, return_tensors="np")
    pv, grid = out["pixel_values"], out["image_grid_thw"][0]
    h, w = smart_resize(rgb.shape[0], rgb.shape[1], factor=FACTOR, **setting)
    # the same call _preprocess makes (resize with PIL, uint8 in and out)
    resized = resize(rgb, size=(h, w), resample=PILImageResampling.BICUBIC, input_data_format=ChannelDimension.LAST)
    assert resized.dtype == np.uint8 and resized.shape == (h, w, 3)
    assert list(grid) == [1, h // PATCH, w // PATCH]
    exact = patchify_reference(resized, tables(proc))
    assert pv.dtype == np.float32 and np.array_equal(exact.view(np.uint32), pv.view(np.uint32)), "patchify != pixel_values"
    return pv, grid, resized


def sample_index(n: int) -> list[int]:
    return sorted(set(range(0, n, SAMPLE_STRIDE)) | {n - 1})


def record_photo(path: Path) -> dict:
    with Image.open(path) as im:
        assert im.mode == "RGB" and "icc_profile" not in im.info
        rgb = np.asarray(im.convert("RGB"))
    entry = {"file": path.name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "decoded_sha256": sha(rgb), "runs": []}
    for name, setting in PHOTO_SETTINGS.items():
        if name == "enlarge" and path.name not in ENLARGED:
            continue
        pv, grid, resized = run_processor(rgb, setting)
        ys, xs = sample_index(resized.shape[0]), sample_index(resized.shape[1])
        entry["runs"].append(
            {
                "setting": name,
                **setting,
                "resized": {"height": int(resized.shape[0]), "width": int(resized.shape[1])},
                "grid_thw": [int(g) for g in grid],
                "pixel_values_shape": list(pv.shape),
                "pixel_values_sha256": sha(pv.astype("<f4")),
                "resized_sha256": sha(resized),
                "rows": ys,
                "cols": xs,
                "sample_base64": base64.b64encode(resized[np.ix_(ys, xs)].tobytes()).decode(),
            }
        )
    return entry


def record_whole() -> dict:
    name, setting = WHOLE
    with Image.open(PHOTOS / name) as im:
        rgb = np.asarray(im.convert("RGB"))
    pv, grid, resized = run_processor(rgb, setting)
    return {
        "file": name,
        **setting,
        "resized": {"height": int(resized.shape[0]), "width": int(resized.shape[1])},
        "grid_thw": [int(g) for g in grid],
        "resized_base64": base64.b64encode(resized.tobytes()).decode(),
        "pixel_values_shape": list(pv.shape),
        "pixel_values_sha256": sha(pv.astype("<f4")),
        # a few values in the clear, for a readable failure
        "pixel_values_head": [float(v) for v in pv[0, :8]],
        "pixel_values_patch1_head": [float(v) for v in pv[1, :8]],
    }


def synthetic_image(height: int, width: int) -> np.ndarray:
    """rgb[y, x, c] = (7·x + 13·y + 101·c + ((x·y) mod 17)) mod 256; the TS test builds the same image."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    return ((7 * x + 13 * y + 101 * c + (x * y) % 17) % 256).astype(np.uint8)


def record_synthetic() -> list[dict]:
    out = []
    for h, w in [(56, 84), (28, 28), (112, 56)]:
        setting = {"min_pixels": 56 * 56 if h * w >= 56 * 56 else 28 * 28, "max_pixels": 10**7}
        rgb = synthetic_image(h, w)
        pv, grid, resized = run_processor(rgb, setting)
        assert np.array_equal(resized, rgb), "smart_resize kept the size, PIL should copy"
        out.append(
            {
                "height": h,
                "width": w,
                **setting,
                "grid_thw": [int(g) for g in grid],
                "pixel_values_shape": list(pv.shape),
                "pixel_values_sha256": sha(pv.astype("<f4")),
                "pixel_values_head": [float(v) for v in pv.reshape(-1)[:8]],
            }
        )
    return out


def smart_resize_cases() -> dict:
    rng = random.Random(20250919)
    sides = [1, 2, 3, 7, 13, 14, 15, 27, 28, 29, 42, 55, 56, 57, 70, 98, 126, 150, 224, 300, 350, 448, 512]
    sides += [700, 1000, 1078, 1920, 3000, 4096, 8192, 20000]
    pairs = {(h, w) for h in sides for w in sides}
    for k in range(0, 60, 3):  # exact halves of the factor: 28k + 14 (and 32k + 16) land on .5
        pairs.add((28 * k + 14, 28 * (k + 1) + 14))
        pairs.add((32 * k + 16, 100))
    for short in [1, 2, 3, 5, 10, 50]:  # the aspect-ratio limit: exactly 200 passes, above it is refused
        for long in [200 * short - 1, 200 * short, 200 * short + 1, 201 * short, 1000 * short]:
            pairs.add((short, long))
            pairs.add((long, short))
    for _ in range(200):
        pairs.add((rng.randint(1, 6000), rng.randint(1, 6000)))
    pairs = sorted(pairs)

    settings = [
        {"patch_px": 14, "merge": 2, "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384},  # Qwen2.5-VL default
        {"patch_px": 14, "merge": 2, "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 64},  # a low image detail
        {"patch_px": 14, "merge": 2, "min_pixels": 28 * 28 * 256, "max_pixels": 28 * 28 * 1280},  # Qwen docs' range
        {"patch_px": 16, "merge": 2, "min_pixels": 32 * 32 * 4, "max_pixels": 32 * 32 * 1024},  # another factor
    ]
    out = []
    for s in settings:
        rows = []
        for h, w in pairs:
            try:
                rh, rw = smart_resize(h, w, factor=s["patch_px"] * s["merge"], min_pixels=s["min_pixels"], max_pixels=s["max_pixels"])
                rows.append(f"{h},{w},{rh},{rw}")
            except ValueError:
                rows.append(f"{h},{w},E")
        out.append({**s, "cases": " ".join(rows)})
    return {
        "source": f"{SOURCE}; qwen2_vl smart_resize; cases are space-separated height,width,resized_height,resized_width "
        "or height,width,E where it raises (aspect ratio > 200)",
        "settings": out,
    }


class IdentityFrequencies(torch.nn.Module):
    """Stands in for the vision rotary embedding: row i of the frequency table is [i]."""

    def forward(self, n: int) -> torch.Tensor:
        return torch.arange(n, dtype=torch.float64)[:, None]


def vision_inputs_cases() -> dict:
    cases = []
    # grids in patches (t, h, w): even sides, divisible and not divisible by the window (8 patches at 112 px)
    grids = [(1, 2, 2), (1, 8, 8), (1, 16, 16), (1, 6, 10), (1, 10, 22), (1, 16, 8), (1, 2, 40), (1, 34, 2), (1, 18, 26), (2, 6, 8)]
    for window_px in [112, 56]:
        cfg = Qwen2_5_VLVisionConfig(
            depth=1, hidden_size=16, num_heads=2, intermediate_size=16, out_hidden_size=16, patch_size=PATCH,
            spatial_merge_size=MERGE, temporal_patch_size=TEMPORAL, window_size=window_px, fullatt_block_indexes=[0],
        )
        model = Qwen2_5_VisionTransformerPretrainedModel(cfg).eval()
        # rot_pos_emb returns rotary_pos_emb_full[pos_ids].flatten(1): an identity table [n, 1] makes that pos_ids
        model.rotary_pos_emb = IdentityFrequencies()
        for t, h, w in grids if window_px == 112 else grids[3:6]:
            grid = torch.tensor([[t, h, w]])
            with torch.no_grad():
                pos = model.rot_pos_emb(grid)
            assert pos.shape == (t * h * w, 2)
            window_index, cu = model.get_window_index(grid)
            cu_unique = torch.unique_consecutive(torch.tensor(cu, dtype=torch.int32))
            # window of each patch after hidden_states[window_index] (merge^2 patches per index): the block-diagonal
            # split that attention with cu_seqlens = cu_unique makes
            segments = torch.searchsorted(cu_unique[1:], torch.arange(t * h * w, dtype=torch.int32), right=True)
            assert int(cu_unique[-1]) == t * h * w
            cases.append(
                {
                    "window_px": window_px,
                    "grid_thw": [t, h, w],
                    "position_ids": [int(v) for v in pos.to(torch.int64).reshape(-1)],
                    "window_index": [int(v) for v in window_index],
                    "cu_window_seqlens": [int(v) for v in cu],
                    "cu_window_seqlens_unique": [int(v) for v in cu_unique],
                    "window_segments": [int(v) for v in segments],
                }
            )
    return {
        "source": f"{SOURCE}; Qwen2_5_VisionTransformerPretrainedModel.rot_pos_emb pos_ids (flattened [P, 2], row then "
        "column) and get_window_index; window_segments: searchsorted over unique_consecutive(cu_window_seqlens)",
        "patch_px": PATCH,
        "merge": MERGE,
        "cases": cases,
    }


IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END = 151655, 151656, 151652, 151653


def rope_config() -> SimpleNamespace:
    vision = SimpleNamespace(spatial_merge_size=MERGE, tokens_per_second=2)
    return SimpleNamespace(
        vision_config=vision, image_token_id=IMAGE_TOKEN, video_token_id=VIDEO_TOKEN, vision_start_token_id=VISION_START
    )


def mrope_cases() -> dict:
    rng = random.Random(7)
    me = SimpleNamespace(config=rope_config())
    cases = []
    # (text before the image incl. <|vision_start|>, grid (t, h, w) in patches, text after incl. <|vision_end|>)
    prompts = [(1, (1, 2, 2), 1), (5, (1, 4, 6), 9), (14, (1, 16, 4), 20), (3, (1, 2, 30), 2), (20, (1, 30, 2), 40)]
    prompts += [(7, (1, 10, 14), 6), (1, (1, 8, 8), 1), (9, (1, 12, 36), 30)]
    for before, (t, h, w), after in prompts:
        tokens = t * (h // MERGE) * (w // MERGE)
        text = lambda n: [rng.randint(10, 1000) for _ in range(n)]  # noqa: E731
        ids = text(before - 1) + [VISION_START] + [IMAGE_TOKEN] * tokens + [VISION_END] + text(after - 1)
        input_ids = torch.tensor([ids])
        grid = torch.tensor([[t, h, w]])
        pos, delta = Qwen2_5_VLModel.get_rope_index(me, input_ids, image_grid_thw=grid)
        pos2, delta2 = Qwen2VLModel.get_rope_index(me, input_ids, image_grid_thw=grid)
        assert torch.equal(pos, pos2) and torch.equal(delta, delta2), "Qwen2-VL and 2.5-VL differ for a still image"
        cases.append(
            {
                "length": len(ids),
                "span": {"offset": before, "length": tokens},
                "grid_thw": [t, h, w],
                "positions": [[int(v) for v in row] for row in pos[:, 0, :]],
                "delta": int(delta[0, 0]),
            }
        )
    ids = torch.tensor([[rng.randint(10, 1000) for _ in range(12)]])
    pos, delta = Qwen2_5_VLModel.get_rope_index(me, ids, image_grid_thw=None)
    cases.append({"length": 12, "span": None, "grid_thw": None, "positions": [[int(v) for v in row] for row in pos[:, 0, :]], "delta": int(delta[0, 0])})
    return {
        "source": f"{SOURCE}; Qwen2_5_VLModel.get_rope_index (equal to Qwen2VLModel's on these) for one image; "
        "span: the image tokens (offset in the prompt, count); grid_thw in patches (merge 2)",
        "merge": MERGE,
        "cases": cases,
    }


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) + "\n")


def main() -> None:
    write(IMAGE_DIR / "smart-resize-cases.json", smart_resize_cases())
    photos = {
        "source": f"{SOURCE}; Qwen2VLImageProcessor (slow, PIL bicubic), Qwen2.5-VL mean/std, patch 14, merge 2, temporal 2",
        "mean": MEAN,
        "std": STD,
        "sample_stride": SAMPLE_STRIDE,
        "normalise_table_f32_base64": [base64.b64encode(t.astype("<f4").tobytes()).decode() for t in tables(processor(3136, 10**6))],
        "photos": [record_photo(p) for p in sorted(PHOTOS.glob("*.jpg"))],
        "whole": record_whole(),
        "synthetic": record_synthetic(),
    }
    write(IMAGE_DIR / "qwen-vl-photos.json", photos)
    write(IMAGE_DIR / "vision-inputs-cases.json", vision_inputs_cases())
    write(POSITIONS_DIR / "mrope-cases.json", mrope_cases())
    files = [IMAGE_DIR / n for n in ["smart-resize-cases.json", "qwen-vl-photos.json", "vision-inputs-cases.json"]]
    files.append(POSITIONS_DIR / "mrope-cases.json")
    # the repo's formatter (biome) checks JSON too: leave the fixtures as it would write them
    subprocess.run(["npx", "biome", "format", "--write", *map(str, files)], cwd=ROOT, check=True)
    for f in files:
        print(f"{f.relative_to(ROOT)}: {f.stat().st_size / 1024:.1f} KB")
    for p in photos["photos"]:
        print(p["file"], [(r["setting"], r["resized"], r["grid_thw"]) for r in p["runs"]])


if __name__ == "__main__":
    main()
