"""InternVL in transformers' form (InternVL3-*-hf, InternVL2.5-*-hf, InternVL2 through transformers' conversion):
InternViT (300M or 6B form) + pixel-shuffle projector in front of a Qwen2 or Llama (InternLM2) decoder; GotOcr2
tiling."""

import math

import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import AutoProcessor, InternVLConfig, InternVLForConditionalGeneration
from transformers.models.internvl.processing_internvl import InternVLProcessorKwargs

from ..decoder import context_tokens
from ..family import Case, Family, Prepared, Unsupported, framed_chat_template, user_asks, with_earlier_turns

PIL_RESAMPLE = {Image.Resampling.BICUBIC: "bicubic", Image.Resampling.BILINEAR: "bilinear",
                Image.Resampling.LANCZOS: "lanczos"}


class VisionGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model.model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values, vision_feature_layer=-1,
                                             vision_feature_select_strategy="default")


def check_vision_config(c) -> None:
    """The vision graph is traced from transformers' own tower and projector; these are the options of
    InternVLConfig / InternVLVisionConfig that the fixtures verify (InternViT-300M form: layer_norm, q/k/v biases;
    6B form: rms_norm, use_qk_norm, no biases; any width, depth, heads and layer scale). Dropouts do nothing in
    eval. The rest is refused rather than exported unverified."""
    v = c.vision_config
    if c.vision_feature_select_strategy != "default":
        raise Unsupported(f"vision_feature_select_strategy {c.vision_feature_select_strategy!r} (only 'default')")
    if c.vision_feature_layer != -1:
        raise Unsupported(f"vision_feature_layer {c.vision_feature_layer!r} (only -1)")
    if v.use_mask_token or not v.use_absolute_position_embeddings:
        raise Unsupported("vision mask tokens / no absolute position embeddings are not supported")
    if not v.use_mean_pooling:  # InternVLVisionModel then adds a final LayerNorm that no InternViT checkpoint has
        raise Unsupported("vision use_mean_pooling false (a final LayerNorm) is not supported")
    if v.norm_type not in ("layer_norm", "rms_norm"):
        raise Unsupported(f"vision norm_type {v.norm_type!r} (only layer_norm, rms_norm)")
    if v.hidden_act != "gelu" or c.projector_hidden_act != "gelu":
        raise Unsupported(f"vision/projector activations {(v.hidden_act, c.projector_hidden_act)} (only gelu)")
    if v.num_channels != 3:
        raise Unsupported(f"vision num_channels {v.num_channels} (only 3: the processor's RGB tiles)")


class InternVLFamily(Family):
    family = "internvl"
    model_class = InternVLForConditionalGeneration

    def __init__(self, checkpoint):
        super().__init__(checkpoint)
        self.config = InternVLConfig.from_pretrained(self.checkpoint)
        c, v = self.config, self.config.vision_config
        check_vision_config(c)
        self.processor = AutoProcessor.from_pretrained(self.checkpoint, use_fast=False)
        # InternVLProcessor expands its context token (<IMG_CONTEXT>) into the tiles' span: a template that writes
        # an image part otherwise (convert_internvl_weights_to_hf.py's own template says "<image>") gets no pixels.
        part = self.processor.apply_chat_template([user_asks("x")])
        if part.count(self.processor.image_token) != 1:
            raise Unsupported(f"the chat template does not render an image part as {self.processor.image_token!r}")
        ip = self.processor.image_processor
        if type(ip).__name__ != "GotOcr2ImageProcessor":
            raise Unsupported(f"image processor {type(ip).__name__} (only GotOcr2ImageProcessor)")
        # InternVLProcessor's own defaults override the image processor's crop_to_patches (InternVL3-hf checkpoints
        # ship false and still tile): the recipe is what the processor does, not what the config file says.
        merged = self.processor._merge_kwargs(InternVLProcessorKwargs, tokenizer_init_kwargs=self.processor.tokenizer.init_kwargs)
        self.crop_to_patches = merged["images_kwargs"].get("crop_to_patches", ip.crop_to_patches)
        if not self.crop_to_patches and ip.max_patches > 1:
            raise Unsupported("crop_to_patches false with max_patches > 1 (one stretched tile) is not supported")
        if ip.size["height"] != v.image_size[0] or ip.size["width"] != v.image_size[1]:
            raise Unsupported(f"processor size {ip.size} differs from the vision image_size {v.image_size}")
        if not (ip.do_resize and ip.do_rescale and ip.do_normalize and ip.do_convert_rgb):
            raise Unsupported("image processors that skip resize/rescale/normalise/RGB are not supported")
        if ip.resample not in PIL_RESAMPLE:
            raise Unsupported(f"resample {ip.resample!r} is not supported")
        side = v.image_size[0] // v.patch_size[0]
        self.grid = int(side * c.downsample_ratio)
        if self.grid * self.grid != c.image_seq_length or self.processor.image_seq_length != c.image_seq_length:
            raise Unsupported(f"image_seq_length {c.image_seq_length} ≠ ({side}·{c.downsample_ratio})²")

    def vision_graph(self, model):
        v = self.config.vision_config
        return VisionGraph(model).eval(), torch.randn(2, 3, v.image_size[0], v.image_size[1])

    def reference_visual(self, model, prepared):
        return model.model.get_image_features(prepared.pixel_values, vision_feature_layer=-1,
                                              vision_feature_select_strategy="default")

    def reference_inputs(self, model, prepared):
        return {"input_ids": torch.tensor([prepared.input_ids]), "pixel_values": prepared.pixel_values}

    def reference_embeds(self, model, prepared):
        # InternVLModel.forward's merge: embeddings, then the image features scattered onto the context tokens.
        input_ids = torch.tensor([prepared.input_ids])
        embeds = model.model.get_input_embeddings()(input_ids)
        features = self.reference_visual(model, prepared)
        mask = model.model.get_placeholder_mask(input_ids, inputs_embeds=embeds, image_features=features)
        return embeds.masked_scatter(mask, features)

    def image_recipe(self):
        ip, v = self.processor.image_processor, self.config.vision_config
        return {
            "processor": "tiles", "tile": {"width": ip.size["width"], "height": ip.size["height"]},
            "min_tiles": ip.min_patches, "max_tiles": ip.max_patches,
            # GotOcr2ImageProcessor.crop_image_to_patches: use_thumbnail defaults to true and is not configurable.
            "thumbnail": True,
            "resample": PIL_RESAMPLE[ip.resample], "rescale": ip.rescale_factor,
            "mean": list(ip.image_mean), "std": list(ip.image_std),
            "patch_px": v.patch_size[0], "pixel_shuffle": self.config.downsample_ratio,
            "grid": {"rows": self.grid, "cols": self.grid}, "tokens_per_tile": self.config.image_seq_length,
        }

    def tokenizer_file(self):
        return self.checkpoint / "tokenizer.json"

    def prompt_recipe(self):
        tok, p = self.processor.tokenizer, self.processor
        eos = self.generation_eos()
        return {
            "tokenizer": "tokenizer.json", "chat_template": framed_chat_template(tok, p.chat_template),
            "default_system_prompt": self.default_system_prompt(),
            # The template emits the context token for an image part; the processor expands it into the span.
            "image_placeholder": p.image_token,
            "image_span": {"start": p.start_image_token, "context": p.image_token, "end": p.end_image_token},
            "stop_token_ids": eos, "bos_token": tok.bos_token, "eos_token": tok.eos_token,
            "max_text_tokens": 2048, "context_tokens": context_tokens(self.config.text_config),
        }

    def default_system_prompt(self) -> str | None:
        """The system turn the template adds by itself to a conversation without one, if any."""
        text = self.processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "x"}]}])
        head = "<|im_start|>system\n"
        if not text.startswith(head):
            return None
        return text[len(head):text.index("<|im_end|>")]

    def vision_info(self):
        c, v, t = self.config, self.config.vision_config, self.config.text_config
        n = (v.image_size[0] // v.patch_size[0]) * (v.image_size[1] // v.patch_size[1])
        tokens, d = n + 1, v.hidden_size  # + CLS
        macs = n * 3 * v.patch_size[0] * v.patch_size[1] * d  # patch embedding
        per_layer = 4 * tokens * d * d + 2 * tokens * tokens * d + 2 * tokens * d * v.intermediate_size
        macs += v.num_hidden_layers * per_layer
        shuffled = d * int(1 / c.downsample_ratio) ** 2
        macs += c.image_seq_length * (shuffled * t.hidden_size + t.hidden_size * t.hidden_size)  # projector
        # per visual token it outputs: a tile's FLOPs over its tokens (the engine multiplies by the tokens it got)
        return {"hidden": v.hidden_size, "flops_per_token": 2 * macs / c.image_seq_length}

    def cases(self):
        return [
            Case("square-1-tile", synthetic_image(448, 448, 0), [user_asks("What is in this picture?")]),
            Case("landscape-2-tiles-thumbnail", synthetic_image(800, 400, 1),
                 with_earlier_turns("Describe the image in detail.")),
            Case("portrait-3-tiles-thumbnail", synthetic_image(300, 900, 2), [user_asks("Which shape is the largest?")]),
        ]

    def prepare(self, case):
        p = self.processor
        text = p.apply_chat_template(case.messages, add_generation_prompt=True)
        out = p(images=[case.image], text=[text], return_tensors="pt")
        ids = out["input_ids"][0].tolist()
        # The same tiles before rescale/normalise: GotOcr2ImageProcessor with those two steps off.
        raw = p.image_processor(images=[case.image], crop_to_patches=self.crop_to_patches,
                                do_rescale=False, do_normalize=False)["pixel_values"]
        tiles = [np.asarray(t).transpose(1, 2, 0) for t in raw]
        if any(t.dtype != np.uint8 for t in tiles) or len(tiles) != out["pixel_values"].shape[0]:
            raise AssertionError("the processor's tiles before rescale are not uint8 or not one per pixel tile")
        rows = [i for i, t in enumerate(ids) if t == p.image_token_id]
        offset, length = rows[0], len(rows)
        if rows != list(range(offset, offset + length)) or length != len(tiles) * self.config.image_seq_length:
            raise AssertionError("the visual rows are not one contiguous span of tiles × tokens_per_tile")
        return Prepared(ids, out["pixel_values"].to(torch.float32), tiles, offset, length)


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients with a few flat shapes: compresses well as PNG and gives the tiles different content."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = seed * 1.7
    r = 127 + 120 * np.sin(x / width * math.pi * 2 + phase)
    g = 127 + 120 * np.cos(y / height * math.pi * 1.5 + phase)
    b = 255 * (x + y) / (width + height)
    img = Image.fromarray(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        cx, cy, s = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height, rng.uniform(0.08, 0.2) * min(width, height)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([cx - s, cy - s, cx + s, cy + s], fill=fill)
    return img
