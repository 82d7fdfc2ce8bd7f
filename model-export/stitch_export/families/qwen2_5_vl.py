"""Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration): a windowed-attention ViT on 14-px patches of the smart-resized
image, a 2×2 patch merger, and a Qwen2 decoder with M-RoPE (3-D positions).

The vision graph takes the indices that transformers computes with data-dependent Python loops (rot_pos_emb's
(row, col) pos_ids, get_window_index's window order and windows) as inputs, computed by the host (`host_*` below,
which the TypeScript engine ports): the graph itself is straight-line and runs transformers' own weights.

Qwen2-VL (Qwen2VLForConditionalGeneration) is not covered: its tower has no windows but LayerNorm/quick-GELU blocks,
a LayerNorm merger and different module names, i.e. a second vision graph; it is refused like any other
architecture."""

import math
from types import SimpleNamespace

import numpy as np
import torch
from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLModel,
    apply_rotary_pos_emb_vision,
)

from ..decoder import context_tokens
from ..family import Case, Family, Prepared, Unsupported, framed_chat_template, user_asks, with_earlier_turns
from .internvl import PIL_RESAMPLE, synthetic_image

IMAGE_PART = "<|vision_start|><|image_pad|><|vision_end|>"


# ---- what the host computes (the TypeScript engine ports these; checked here against transformers' own code) ----

def host_vision_position_ids(grid_h: int, grid_w: int, merge: int) -> np.ndarray:
    """[P, 2] (row, col) of each patch in the processor's order (merge × merge blocks, row-major, then row-major
    inside a block): rot_pos_emb's pos_ids for one still image (t = 1)."""
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    shape = (grid_h // merge, merge, grid_w // merge, merge)
    order = lambda a: a.reshape(shape).transpose(0, 2, 1, 3).reshape(-1)
    return np.stack([order(rows), order(cols)], -1).astype(np.int64)


def host_windows(grid_h: int, grid_w: int, merge: int, window_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(window_index [P / merge²], window_segments [P]): the merged tokens (row-major on the (grid_h / merge) ×
    (grid_w / merge) grid) listed window by window (windows of window_tokens × window_tokens tokens, row-major,
    the last row/column of windows possibly partial), tokens row-major inside a window; and for every patch in that
    order, its window's number."""
    th, tw = grid_h // merge, grid_w // merge
    index, segments = [], []
    window = 0
    for wy in range(0, th, window_tokens):
        for wx in range(0, tw, window_tokens):
            for y in range(wy, min(wy + window_tokens, th)):
                for x in range(wx, min(wx + window_tokens, tw)):
                    index.append(y * tw + x)
            segments += [window] * (len(index) * merge * merge - len(segments))
            window += 1
    return np.array(index, dtype=np.int64), np.array(segments, dtype=np.int64)


def host_rope_positions(input_ids: list[int], offset: int, grid_h: int, grid_w: int, merge: int) -> np.ndarray:
    """[3, S] M-RoPE positions for one image whose visual rows start at `offset`: text t = h = w = index; visual
    token (s, s + row, s + col) with s = offset; text after resumes at the largest position + 1."""
    th, tw = grid_h // merge, grid_w // merge
    n = th * tw
    before = np.repeat(np.arange(offset)[None], 3, 0)
    row, col = np.divmod(np.arange(n), tw)
    visual = np.stack([np.zeros(n, np.int64), row, col]) + offset
    start = int(visual.max()) + 1
    after = np.repeat(np.arange(start, start + len(input_ids) - offset - n)[None], 3, 0)
    return np.concatenate([before, visual, after], 1).astype(np.int64)


# ---- transformers' own index code, called without a model (it only reads these attributes) ----

def transformers_pos_ids(grid_thw: torch.Tensor, merge: int) -> np.ndarray:
    """rot_pos_emb's pos_ids: with a rotary table whose row r is r, rot_pos_emb returns pos_ids themselves."""
    fake = SimpleNamespace(spatial_merge_size=merge,
                           rotary_pos_emb=lambda n: torch.arange(int(n), dtype=torch.float64)[:, None])
    return Qwen2_5_VisionTransformerPretrainedModel.rot_pos_emb(fake, grid_thw).to(torch.int64).numpy()


def transformers_windows(grid_thw: torch.Tensor, vision_config) -> tuple[np.ndarray, np.ndarray]:
    """get_window_index's window_index, and each patch's window from its cu_window_seqlens (as forward() uses them)."""
    v = vision_config
    fake = SimpleNamespace(window_size=v.window_size, spatial_merge_size=v.spatial_merge_size, patch_size=v.patch_size,
                           spatial_merge_unit=v.spatial_merge_size ** 2)
    index, cu = Qwen2_5_VisionTransformerPretrainedModel.get_window_index(fake, grid_thw)
    cu = torch.unique_consecutive(torch.tensor(cu))
    patches = int(grid_thw[:, 1:].prod())
    segments = torch.searchsorted(cu[1:], torch.arange(patches), right=True)
    return index.numpy().astype(np.int64), segments.numpy().astype(np.int64)


def transformers_rope_index(config, input_ids: list[int], grid_thw: torch.Tensor) -> tuple[np.ndarray, int]:
    """get_rope_index for one sequence with one image: ([3, S] positions, rope delta)."""
    positions, delta = Qwen2_5_VLModel.get_rope_index(SimpleNamespace(config=config), torch.tensor([input_ids]),
                                                      image_grid_thw=grid_thw)
    return positions[:, 0].numpy().astype(np.int64), int(delta.reshape(-1)[0])


# ---- the vision graph ----

class VisionGraph(torch.nn.Module):
    """Qwen2_5_VisionTransformerPretrainedModel.forward for one still image, its index work taken as inputs: patch
    embedding, the 2-D rotary from vision_position_ids, the window reordering, blocks with an explicit mask (windowed
    blocks: equal window_segments; fullatt_block_indexes: everything), the merger, the reverse permutation."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual
        self.unit = visual.spatial_merge_unit
        self.full = set(visual.fullatt_block_indexes)

    def forward(self, pixel_values, vision_position_ids, window_index, window_segments):
        v = self.visual
        x = v.patch_embed(pixel_values)  # [P, D]
        p = x.shape[0]
        # rotary_pos_emb(max)[pos_ids].flatten(1) = outer(arange, inv_freq)[pos_ids]: rows then cols.
        rot = (vision_position_ids.to(torch.float32)[..., None] * v.rotary_pos_emb.inv_freq).flatten(1)
        x = x.reshape(p // self.unit, self.unit, -1)[window_index].reshape(p, -1)
        rot = rot.reshape(p // self.unit, self.unit, -1)[window_index].reshape(p, -1)
        emb = torch.cat((rot, rot), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        same = window_segments[:, None] == window_segments[None, :]
        window_mask = torch.zeros(same.shape).masked_fill(~same, torch.finfo(torch.float32).min)
        for i, block in enumerate(v.blocks):
            x = x + self.attention(block.attn, block.norm1(x), cos, sin, None if i in self.full else window_mask)
            x = x + block.mlp(block.norm2(x))
        x = v.merger(x)  # [P / unit, out_hidden], in window order
        m = window_index.shape[0]
        inverse = torch.zeros_like(window_index).scatter(0, window_index, torch.arange(m, dtype=window_index.dtype))
        return x[inverse]

    @staticmethod
    def attention(attn, h, cos, sin, mask):
        """Qwen2_5_VLVisionAttention with eager attention over the whole image, masked instead of split."""
        p = h.shape[0]
        q, k, v = attn.qkv(h).reshape(p, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, P, d]
        scores = (q @ k.transpose(1, 2)) * attn.scaling
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        y = (probs @ v).transpose(0, 1).reshape(p, -1)
        return attn.proj(y)


class Qwen25VLFamily(Family):
    family = "qwen2.5-vl"
    model_class = Qwen2_5_VLForConditionalGeneration

    def __init__(self, checkpoint):
        super().__init__(checkpoint)
        self.config = Qwen2_5_VLConfig.from_pretrained(self.checkpoint)
        v = self.config.vision_config
        self.processor = AutoProcessor.from_pretrained(self.checkpoint, use_fast=False)
        ip = self.processor.image_processor
        if type(ip).__name__ != "Qwen2VLImageProcessor":
            raise Unsupported(f"image processor {type(ip).__name__} (only Qwen2VLImageProcessor)")
        if not (ip.do_resize and ip.do_rescale and ip.do_normalize and ip.do_convert_rgb):
            raise Unsupported("image processors that skip resize/rescale/normalise/RGB are not supported")
        if ip.resample not in PIL_RESAMPLE:
            raise Unsupported(f"resample {ip.resample!r} is not supported")
        if (ip.patch_size, ip.merge_size, ip.temporal_patch_size) != (v.patch_size, v.spatial_merge_size,
                                                                       v.temporal_patch_size):
            raise Unsupported(f"processor patch/merge/temporal {(ip.patch_size, ip.merge_size, ip.temporal_patch_size)}"
                              f" ≠ vision config {(v.patch_size, v.spatial_merge_size, v.temporal_patch_size)}")
        if (ip.min_pixels, ip.max_pixels) != (ip.size["shortest_edge"], ip.size["longest_edge"]):
            raise Unsupported(f"min/max_pixels {(ip.min_pixels, ip.max_pixels)} disagree with size {ip.size}")
        if v.in_channels != 3:
            raise Unsupported(f"vision in_channels {v.in_channels} (only 3)")
        factor = v.patch_size * v.spatial_merge_size
        if v.window_size % factor:
            raise Unsupported(f"window_size {v.window_size} is not a multiple of patch · merge = {factor}")
        if any(not 0 <= i < v.depth for i in v.fullatt_block_indexes):
            raise Unsupported(f"fullatt_block_indexes {v.fullatt_block_indexes} outside 0..{v.depth - 1}")
        if v.out_hidden_size != self.config.text_config.hidden_size:
            raise Unsupported(f"vision out_hidden_size {v.out_hidden_size} ≠ text hidden {self.config.text_config.hidden_size}")
        tok = self.processor.tokenizer
        ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>")}
        if (ids["<|image_pad|>"], ids["<|vision_start|>"], ids["<|vision_end|>"]) != (
                self.config.image_token_id, self.config.vision_start_token_id, self.config.vision_end_token_id):
            raise Unsupported(f"tokenizer ids {ids} disagree with the config's image/vision_start/vision_end ids")
        if self.processor.image_token != "<|image_pad|>":
            raise Unsupported(f"image token {self.processor.image_token!r} (only <|image_pad|>)")
        # The template writes <|vision_start|><|image_pad|><|vision_end|> for an image part; the processor expands
        # the pad: the visual span is exactly the pads (image_span without start/end).
        rendered = self.render([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}])
        if rendered.count(IMAGE_PART) != 1:
            raise Unsupported(f"the chat template does not render an image part as {IMAGE_PART}")

    def render(self, messages, add_generation_prompt=False) -> str:
        return self.processor.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)

    def sample_vision_inputs(self, grid_h: int, grid_w: int) -> tuple:
        v = self.config.vision_config
        merge = v.spatial_merge_size
        pos = host_vision_position_ids(grid_h, grid_w, merge)
        index, segments = host_windows(grid_h, grid_w, merge, v.window_size // (v.patch_size * merge))
        width = 3 * v.temporal_patch_size * v.patch_size ** 2
        return (torch.randn(grid_h * grid_w, width), torch.from_numpy(pos), torch.from_numpy(index),
                torch.from_numpy(segments))

    def vision_graph(self, model):
        # A non-square grid with partial windows, so that no size is frozen to a constant.
        return VisionGraph(model.model.visual).eval(), self.sample_vision_inputs(12, 20)

    def vision_io(self):
        return (["pixel_values", "vision_position_ids", "window_index", "window_segments"],
                {"pixel_values": {0: "P"}, "vision_position_ids": {0: "P"}, "window_index": {0: "M"},
                 "window_segments": {0: "P"}, "visual_embeds": {0: "M"}})

    def reference_visual(self, model, prepared):
        return model.model.visual(prepared.pixel_values, grid_thw=self.grid_thw(prepared))

    @staticmethod
    def grid_thw(prepared) -> torch.Tensor:
        return torch.tensor([prepared.fixture["grid_thw"]])

    def reference_inputs(self, model, prepared):
        return {"input_ids": torch.tensor([prepared.input_ids]), "pixel_values": prepared.pixel_values,
                "image_grid_thw": self.grid_thw(prepared)}

    def reference_embeds(self, model, prepared):
        # Qwen2_5_VLModel.forward's merge: embeddings, then the image features scattered onto the <|image_pad|> rows.
        input_ids = torch.tensor([prepared.input_ids])
        embeds = model.model.get_input_embeddings()(input_ids)
        features = torch.cat(model.model.get_image_features(prepared.pixel_values, self.grid_thw(prepared)), dim=0)
        mask, _ = model.model.get_placeholder_mask(input_ids, inputs_embeds=embeds, image_features=features)
        return embeds.masked_scatter(mask, features)

    def image_recipe(self):
        ip, v = self.processor.image_processor, self.config.vision_config
        return {
            "processor": "smart_resize", "patch_px": v.patch_size, "merge": v.spatial_merge_size,
            "temporal_patch": v.temporal_patch_size, "min_pixels": ip.min_pixels, "max_pixels": ip.max_pixels,
            "window_px": v.window_size, "resample": PIL_RESAMPLE[ip.resample], "rescale": ip.rescale_factor,
            "mean": list(ip.image_mean), "std": list(ip.image_std),
        }

    def tokenizer_file(self):
        return self.checkpoint / "tokenizer.json"

    def prompt_recipe(self):
        tok, p = self.processor.tokenizer, self.processor
        return {
            "tokenizer": "tokenizer.json", "chat_template": framed_chat_template(tok, p.chat_template),
            "default_system_prompt": None,  # the template itself writes "You are a helpful assistant." (see below)
            "image_placeholder": p.image_token,
            "image_span": {"start": None, "context": p.image_token, "end": None},
            "stop_token_ids": self.generation_eos(), "bos_token": tok.bos_token, "eos_token": tok.eos_token,
            "max_text_tokens": 2048, "context_tokens": context_tokens(self.config.text_config),
        }

    def template_system_prompt(self) -> str | None:
        """The system turn the template adds by itself to a conversation without one (Qwen2.5-VL: "You are a helpful
        assistant."): the engine must not add one (default_system_prompt null)."""
        text = self.render([{"role": "user", "content": [{"type": "text", "text": "x"}]}])
        head = "<|im_start|>system\n"
        return text[len(head):text.index("<|im_end|>")] if text.startswith(head) else None

    def vision_info(self):
        """FLOPs per visual token (merged, what the tower outputs): 4 patches' embedding and blocks plus the merger.
        Windowed blocks attend over a window's patches; full-attention blocks over the whole image, counted at
        max_pixels (an upper bound: the engine multiplies by the tokens it got)."""
        v, ip = self.config.vision_config, self.processor.image_processor
        d, unit = v.hidden_size, v.spatial_merge_size ** 2
        window = (v.window_size // v.patch_size) ** 2
        longest = ip.max_pixels // v.patch_size ** 2
        per_patch = 3 * v.temporal_patch_size * v.patch_size ** 2 * d  # patch embedding
        per_patch += v.depth * (4 * d * d + 3 * d * v.intermediate_size)  # qkv, proj, SwiGLU
        full = len(v.fullatt_block_indexes)
        per_patch += (v.depth - full) * 2 * window * d + full * 2 * longest * d  # scores and weighted sums
        merger = (unit * d) ** 2 + unit * d * v.out_hidden_size
        return {"hidden": d, "flops_per_token": 2 * (unit * per_patch + merger)}

    def cases(self):
        return [
            # 230×218 → 224×224 (rounding path): 8×8 tokens, 2×2 full windows
            Case("square-224x224", synthetic_image(230, 218, 0), [user_asks("What is in this picture?")]),
            # 672×336 → 336×168 (max_pixels path): 12×6 tokens, 3×2 windows, the lower row partial
            Case("landscape-336x168", synthetic_image(672, 336, 1), with_earlier_turns("Describe the image in detail.")),
            # 138×425 → 140×420: 5×15 tokens, 2×4 windows, partial in both directions
            Case("portrait-140x420", synthetic_image(138, 425, 2), [user_asks("Which shape is the largest?")]),
        ]

    def prepare(self, case):
        for message in case.messages:
            content = message["content"]
            if not isinstance(content, str) and any(part.get("type") == "video" for part in content):
                raise Unsupported("videos are not supported (one still image per request)")
        p, v = self.processor, self.config.vision_config
        merge = v.spatial_merge_size
        text = self.render(case.messages, add_generation_prompt=True)
        out = p(images=[case.image], text=[text], return_tensors="pt")
        ids = out["input_ids"][0].tolist()
        grid_thw = out["image_grid_thw"]
        t, gh, gw = (int(x) for x in grid_thw[0])
        if t != 1:
            raise AssertionError(f"a still image has grid_t {t}")
        # The same resized image before rescale/normalise: the processor with those two steps off, un-patchified.
        raw = p.image_processor(images=[case.image], do_rescale=False, do_normalize=False)["pixel_values"]
        resized = unpatchify(np.asarray(raw), gh, gw, merge, v.patch_size, v.temporal_patch_size)
        if not np.array_equal(resized, np.round(resized)) or resized.min() < 0 or resized.max() > 255:
            raise AssertionError("the processor's resized image before rescale is not uint8-valued")
        resized = resized.astype(np.uint8)
        rows = [i for i, token in enumerate(ids) if token == p.image_token_id]
        offset, length = rows[0], len(rows)
        if rows != list(range(offset, offset + length)) or length != gh * gw // merge ** 2:
            raise AssertionError("the visual rows are not one contiguous span of grid_h · grid_w / merge² pads")
        if ids[offset - 1] != self.config.vision_start_token_id or ids[offset + length] != self.config.vision_end_token_id:
            raise AssertionError("the pads are not between <|vision_start|> and <|vision_end|>")
        # Host-computed inputs, each checked against transformers' own index code.
        window_tokens = v.window_size // (v.patch_size * merge)
        pos = host_vision_position_ids(gh, gw, merge)
        index, segments = host_windows(gh, gw, merge, window_tokens)
        t_index, t_segments = transformers_windows(grid_thw, v)
        if not np.array_equal(pos, transformers_pos_ids(grid_thw, merge)):
            raise AssertionError("vision_position_ids differ from rot_pos_emb's pos_ids")
        if not (np.array_equal(index, t_index) and np.array_equal(segments, t_segments)):
            raise AssertionError("window_index / window_segments differ from get_window_index")
        positions, delta = transformers_rope_index(self.config, ids, grid_thw)
        if not np.array_equal(positions, host_rope_positions(ids, offset, gh, gw, merge)):
            raise AssertionError("M-RoPE positions differ from get_rope_index")
        if delta != int(positions.max()) + 1 - len(ids):
            raise AssertionError("rope delta ≠ max position + 1 − S")
        pixel_values = out["pixel_values"].to(torch.float32)
        feeds = {"pixel_values": pixel_values.numpy(), "vision_position_ids": pos, "window_index": t_index,
                 "window_segments": t_segments}
        fixture = {"grid_thw": [t, gh, gw], "vision_position_ids": pos.tolist(), "window_index": t_index.tolist(),
                   "window_segments": t_segments.tolist(), "position_ids": positions.tolist(), "rope_delta": delta}
        return Prepared(ids, pixel_values, [resized], offset, length, positions=positions, vision_feeds=feeds,
                        fixture=fixture)

    def rebuilt_pixel_values(self, prepared, recipe):
        return rebuild_patches(prepared.tiles_uint8[0], recipe)

    def fixture_image(self, prepared):
        from ..verify import png_base64
        return {"resized_png_base64": png_base64(prepared.tiles_uint8[0])}


def unpatchify(patches: np.ndarray, gh: int, gw: int, merge: int, patch: int, temporal: int) -> np.ndarray:
    """The processor's flattened patches [P, C·t·p·p] back to the (first frame's) image [H, W, C]."""
    x = patches.reshape(gh // merge, gw // merge, merge, merge, 3, temporal, patch, patch)[:, :, :, :, :, 0]
    return x.transpose(0, 2, 5, 1, 3, 6, 4).reshape(gh * patch, gw * patch, 3)


def rebuild_patches(resized: np.ndarray, recipe: dict) -> np.ndarray:
    """pixel_values [P, 3·t·p·p] from the resized uint8 image as the engine computes them: (u·rescale − mean) / std in
    float32, each patch repeated temporal_patch times, patches in merge × merge blocks (Qwen2VLImageProcessor)."""
    p, m, t = recipe["patch_px"], recipe["merge"], recipe["temporal_patch"]
    h, w = resized.shape[0] // p, resized.shape[1] // p
    mean, std = np.array(recipe["mean"], np.float32), np.array(recipe["std"], np.float32)
    x = ((resized.astype(np.float32) * np.float32(recipe["rescale"]) - mean) / std).transpose(2, 0, 1)  # [C, H, W]
    x = x.reshape(3, h // m, m, p, w // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)  # [bh, bw, mh, mw, C, p, p]
    x = np.repeat(x[:, :, :, :, :, None], t, axis=5)  # [bh, bw, mh, mw, C, t, p, p]
    return x.reshape(h * w, 3 * t * p * p)


def smart_resize_size(height: int, width: int, recipe: dict) -> tuple[int, int]:
    """Qwen2VLImageProcessor's smart_resize (for tests and documentation)."""
    factor = recipe["patch_px"] * recipe["merge"]
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > recipe["max_pixels"]:
        beta = math.sqrt(height * width / recipe["max_pixels"])
        h, w = max(factor, math.floor(height / beta / factor) * factor), max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < recipe["min_pixels"]:
        beta = math.sqrt(recipe["min_pixels"] / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w

