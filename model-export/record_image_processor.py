"""Record transformers' InternVL image preprocessing as the reference for gpu-worker/engine/image-processor.

Writes two fixtures (run from the repo root with the exporter venv):

    .venv-export/bin/python model-export/record_image_processor.py

- test/fixtures/photos/reference.json: for each photo in test/fixtures/photos/*.jpg, what GotOcr2ImageProcessor
  (the slow PIL one, InternVL3-hf settings) makes of it: the chosen grid, the tile count, a strided sample of each
  tile's uint8 pixels *before* rescale (base64 RGB), and the per-tile per-channel mean of pixel_values. Also the
  256-entry normalisation table numpy's float32 arithmetic gives per channel, so the TS table can be checked bit
  for bit, and a sha256 of PIL's decoded RGB, so the TS test can tell a decoder difference from a resize one.
- gpu-worker/engine/image-processor/canvas-cases.json: get_optimal_tiled_canvas for many (height, width) pairs
  under several (tile, min, max) settings, incl. extreme ratios and the equal-ratio ties.

The uint8 sample is exact, not an approximation of pixel_values: the script asserts that pixel_values equal the
table applied to the uint8 tiles that crop_image_to_patches returns, bit for bit, for every pixel of every tile.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image
from transformers.models.got_ocr2.image_processing_got_ocr2 import (
    GotOcr2ImageProcessor,
    get_optimal_tiled_canvas,
)
from transformers.image_utils import PILImageResampling

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "test/fixtures/photos"
CANVAS_CASES = ROOT / "gpu-worker/engine/image-processor/canvas-cases.json"

TILE = 448
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# Every 9th pixel of each row and column plus the last one: the last row/column is where a crop that is off by one
# pixel shows first. Keeps reference.json well under 1 MB for ~60 tiles.
SAMPLE = list(range(0, TILE, 9)) + [TILE - 1]


def processor() -> GotOcr2ImageProcessor:
    # InternVL3-hf's preprocessor_config.json, as GotOcr2ImageProcessor arguments.
    return GotOcr2ImageProcessor(
        do_resize=True,
        size={"height": TILE, "width": TILE},
        crop_to_patches=True,
        min_patches=1,
        max_patches=12,
        resample=PILImageResampling.BICUBIC,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=MEAN,
        image_std=STD,
        do_convert_rgb=True,
    )


def tables() -> np.ndarray:
    """pixel_values of each byte value, by transformers' own rescale + normalize (float64 × scale → float32, then
    float32 (x − mean) / std), so the table is whatever numpy's rounding gives, not a re-derivation."""
    proc = processor()
    u = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None], (256, 3))[None].copy()  # 1 × 256 × 3, HWC
    x = proc.rescale(u, scale=1 / 255, input_data_format="channels_last")
    x = proc.normalize(x, mean=MEAN, std=STD, input_data_format="channels_last")
    assert x.dtype == np.float32
    return x[0].T.copy()  # 3 × 256


def record_photo(path: Path, proc: GotOcr2ImageProcessor, table: np.ndarray) -> dict:
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.getexif().get(0x0112, 1) == 1, f"{path.name}: want plain RGB, no rotation"
        assert "icc_profile" not in im.info, f"{path.name}: an ICC profile would make decoders disagree"
        rgb = np.asarray(im.convert("RGB"))
    height, width = rgb.shape[:2]

    out = proc.preprocess(rgb, return_tensors="np")
    pixel_values = out["pixel_values"]  # tiles × 3 × H × W, float32
    (num_patches,) = out["num_patches"]

    # The uint8 tiles, by the same method preprocess calls (then its per-tile resize to 448×448 is a no-op: PIL's
    # resize returns a copy when the size is unchanged). Check that claim instead of trusting it.
    tiles = proc.crop_image_to_patches(rgb, 1, 12, patch_size={"height": TILE, "width": TILE}, data_format="channels_last")
    assert len(tiles) == num_patches == pixel_values.shape[0]
    cols, rows = get_optimal_tiled_canvas((height, width), (TILE, TILE), 1, 12)
    assert num_patches == cols * rows + (1 if cols * rows > 1 else 0)

    samples, means = [], []
    for tile, pv in zip(tiles, pixel_values):
        assert tile.dtype == np.uint8 and tile.shape == (TILE, TILE, 3)
        chw = tile.transpose(2, 0, 1)
        exact = np.stack([table[c][chw[c]] for c in range(3)])
        assert np.array_equal(exact.view(np.uint32), pv.view(np.uint32)), f"{path.name}: table != pixel_values"
        samples.append(base64.b64encode(tile[np.ix_(SAMPLE, SAMPLE)].tobytes()).decode())
        means.append([float(pv[c].mean(dtype=np.float64)) for c in range(3)])

    return {
        "file": path.name,
        "width": width,
        "height": height,
        "decoded_sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
        "cols": int(cols),
        "rows": int(rows),
        "tiles": int(num_patches),
        "tile_samples": samples,
        "pixel_value_means": means,
    }


def canvas_cases() -> dict:
    rng = random.Random(20250801)
    sides = sorted(
        set(
            [1, 2, 3, 7, 10, 50, 100, 149, 150, 200, 223, 224, 225, 300, 316, 317, 400, 447, 448, 449, 500, 512]
            + [548, 549, 600, 633, 634, 640, 672, 700, 776, 777, 800, 896, 897, 1000, 1024, 1097, 1098, 1280]
            + [1344, 1500, 1792, 1920, 2000, 2048, 2688, 3000, 4000, 4032, 6000, 8192]
        )
    )
    pairs = {(h, w) for h in sides for w in sides}
    # ratios exactly on or half way between grid ratios: where the tie rule decides
    for base in [10, 37, 100, 149, 224, 317, 448, 449, 634, 900, 1500]:
        for num, den in [(1, 1), (2, 1), (1, 2), (3, 2), (2, 3), (4, 3), (3, 4), (5, 4), (3, 1), (1, 3), (5, 2)]:
            pairs.add((base * den, base * num))
    # extreme ratios
    for long in [1000, 5000, 20000, 65535]:
        for short in [1, 2, 5, 17, 64]:
            pairs.add((short, long))
            pairs.add((long, short))
    for _ in range(1500):
        pairs.add((rng.randint(1, 5000), rng.randint(1, 5000)))
    pairs = sorted(pairs)

    settings = [
        {"tile": {"width": 448, "height": 448}, "min_tiles": 1, "max_tiles": 12},  # InternVL3
        {"tile": {"width": 448, "height": 448}, "min_tiles": 1, "max_tiles": 6},
        {"tile": {"width": 448, "height": 448}, "min_tiles": 2, "max_tiles": 9},
        {"tile": {"width": 384, "height": 256}, "min_tiles": 1, "max_tiles": 12},  # non-square: catches h/w swaps
        {"tile": {"width": 448, "height": 448}, "min_tiles": 1, "max_tiles": 1},
    ]
    out = []
    for s in settings:
        t = s["tile"]
        rows = []
        for h, w in pairs:
            cols, rws = get_optimal_tiled_canvas((h, w), (t["height"], t["width"]), s["min_tiles"], s["max_tiles"])
            rows.append(f"{h},{w},{cols},{rws}")
        # one string per setting: a JSON array of ~4000 little arrays would be one line each once formatted
        out.append({**s, "cases": " ".join(rows)})
    return {
        "source": "transformers 4.57.1 got_ocr2 get_optimal_tiled_canvas; cases are space-separated height,width,cols,rows",
        "settings": out,
    }


def main() -> None:
    proc = processor()
    table = tables()
    photos = [record_photo(p, proc, table) for p in sorted(PHOTOS.glob("*.jpg"))]
    reference = {
        "source": "transformers 4.57.1 GotOcr2ImageProcessor (slow, PIL), InternVL3-hf settings; "
        "written by model-export/record_image_processor.py",
        "tile": TILE,
        "sample_index": SAMPLE,
        "mean": MEAN,
        "std": STD,
        "normalise_table_f32_base64": [base64.b64encode(table[c].astype("<f4").tobytes()).decode() for c in range(3)],
        "photos": photos,
    }
    (PHOTOS / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    CANVAS_CASES.parent.mkdir(parents=True, exist_ok=True)
    CANVAS_CASES.write_text(json.dumps(canvas_cases()) + "\n")
    # the repo's formatter (biome) checks JSON too: leave the fixtures as it would write them
    subprocess.run(["npx", "biome", "format", "--write", str(PHOTOS / "reference.json"), str(CANVAS_CASES)], cwd=ROOT, check=True)
    for p in photos:
        print(f"{p['file']}: {p['width']}x{p['height']} -> {p['cols']}x{p['rows']} ({p['tiles']} tiles)")


if __name__ == "__main__":
    main()
