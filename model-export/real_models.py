"""The published models make_real_size.py writes random checkpoints of: their dimensions, each with its source, and
what else a checkpoint folder of the family carries (tokenizer, processor, generation config).

The Hugging Face Hub is not reachable from the machines this was written on: the dimensions are those of the
models' config.json files as published (OpenGVLab/InternVL3-*-hf, Qwen/Qwen2.5-VL-*-Instruct); a user with the
real checkpoints exports those, not these.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from transformers import (InternVLConfig, InternVLForConditionalGeneration, Qwen2_5_VLConfig,
                          Qwen2_5_VLForConditionalGeneration, Qwen2Config)
from transformers.integrations.accelerate import init_empty_weights

import make_tiny
import make_tiny_qwen25vl
import real_configs


@dataclass
class Spec:
    model_class: type
    build_tokenizer: Callable
    build_config: Callable  # tokenizer → config
    finish: Callable  # (out, tokenizer) → writes the processor files
    eos_tokens: list[str]
    source: str
    # (module name, module, generator) after transformers' init: where the tool departs from it
    after_init: Callable = lambda name, module, generator: None


# --- InternVL3 (InternViT-300M-448px-V2_5 + pixel-shuffle projector + Qwen2.5 decoder) ---------------------------

# The text part of OpenGVLab/InternVL3-{1B,2B,8B,14B,38B}-hf config.json (Qwen2.5-0.5B / -1.5B / -7B / -14B / -32B
# as InternVL3 ships them: lm_head untied from the embedding).
INTERNVL3_TEXT = {
    "1b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
               intermediate_size=4864),
    "2b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
               intermediate_size=8960),
    "8b": dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
               intermediate_size=18944),
    "14b": dict(hidden_size=5120, num_hidden_layers=48, num_attention_heads=40, num_key_value_heads=8,
                intermediate_size=13824),
    "38b": dict(hidden_size=5120, num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8,
                intermediate_size=27648),
}
INTERNVL3_VOCAB = 151674  # Qwen2.5's 151643 + InternVL3's added tokens: the text config's vocab_size
# InternViT-300M-448px-V2_5 (transformers' InternVLVisionConfig defaults are exactly these, except attention_bias).
INTERNVIT_300M = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      hidden_act="gelu", image_size=[448, 448], patch_size=[14, 14], num_channels=3,
                      attention_bias=True, use_qk_norm=False, use_mean_pooling=True, norm_type="layer_norm",
                      layer_norm_eps=1e-6, layer_scale_init_value=0.1, use_absolute_position_embeddings=True,
                      use_mask_token=False, initializer_range=0.02)


def internvl3_config(size: str) -> Callable:
    def build(tokenizer) -> InternVLConfig:
        t = INTERNVL3_TEXT[size]
        text = Qwen2Config(
            vocab_size=INTERNVL3_VOCAB, head_dim=t["hidden_size"] // t["num_attention_heads"], hidden_act="silu",
            max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
            use_sliding_window=False, attention_dropout=0.0, initializer_range=0.02,
            bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), **t,
        )
        # 38B carries InternViT-6B-448px-V2_5 (45 layers, qk-norm), the others InternViT-300M.
        vision = real_configs.INTERNVIT_6B if size == "38b" else INTERNVIT_300M
        return InternVLConfig(
            vision_config=vision, text_config=text,
            image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=256,
            downsample_ratio=0.5, projector_hidden_act="gelu", vision_feature_layer=-1,
            vision_feature_select_strategy="default",
        )
    return build


internvl_processor = make_tiny.save_processor  # the InternVL -hf processor files, one definition


@torch.no_grad()
def internvl_after_init(name: str, module, generator) -> None:
    """Non-zero vision position embeddings and CLS (transformers zeroes them), so that tiles are not
    position-blind."""
    if name.endswith("vision_tower.embeddings"):
        module.position_embeddings.normal_(0, 0.02, generator=generator)
        module.cls_token.normal_(0, 0.02, generator=generator)


def internvl3(size: str) -> Spec:
    return Spec(InternVLForConditionalGeneration, make_tiny.build_tokenizer, internvl3_config(size), internvl_processor,
                ["<|im_end|>", "<|endoftext|>"], f"OpenGVLab/InternVL3-{size.upper()}-hf config.json",
                internvl_after_init)


# --- Qwen2.5-VL (its window-attention ViT + Qwen2.5 decoder with M-RoPE) ------------------------------------------

QWEN25VL_TEXT = {
    "3b": dict(hidden_size=2048, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
               intermediate_size=11008, vocab_size=151936, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
               intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False),
}
QWEN25VL_REAL_MAX_PIXELS = 12845056  # the Instruct checkpoints' preprocessor_config.json


def qwen25vl_config(size: str) -> Callable:
    def build(tokenizer) -> Qwen2_5_VLConfig:
        ids = tokenizer.convert_tokens_to_ids
        t = QWEN25VL_TEXT[size]
        vision = dict(depth=32, hidden_size=1280, num_heads=16, intermediate_size=3420, hidden_act="silu",
                      in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2,
                      window_size=112, fullatt_block_indexes=[7, 15, 23, 31], out_hidden_size=t["hidden_size"],
                      initializer_range=0.02)
        text = dict(t, hidden_act="silu", max_position_embeddings=128000, rope_theta=1e6, rms_norm_eps=1e-6,
                    use_sliding_window=False, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                    initializer_range=0.02, bos_token_id=None, eos_token_id=ids("<|im_end|>"))
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                                video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                                vision_end_token_id=ids("<|vision_end|>"),
                                tie_word_embeddings=t["tie_word_embeddings"])
    return build


def qwen25vl_finish(out: Path, tokenizer) -> None:
    make_tiny_qwen25vl.architectures_at_top(out)
    make_tiny_qwen25vl.save_processor(out, tokenizer, QWEN25VL_REAL_MAX_PIXELS)


def qwen25vl(size: str) -> Spec:
    return Spec(Qwen2_5_VLForConditionalGeneration, make_tiny_qwen25vl.build_tokenizer, qwen25vl_config(size),
                qwen25vl_finish, ["<|im_end|>", "<|endoftext|>"], f"Qwen/Qwen2.5-VL-{size.upper()}-Instruct config.json")


CONFIGS: dict[str, Spec] = {
    **{f"internvl3-{size}": internvl3(size) for size in INTERNVL3_TEXT},
    **{f"qwen2.5-vl-{size}": qwen25vl(size) for size in QWEN25VL_TEXT},
    **{f"internvl2.5-{size}": real_configs.spec(size) for size in real_configs.TEXT},
}


def parameter_count(spec: Spec) -> int:
    """Parameters of the architecture, counted on the meta device (a tied lm_head once)."""
    config = spec.build_config(spec.build_tokenizer())
    with init_empty_weights(include_buffers=False):
        model = spec.model_class(config)
    model.tie_weights()
    return sum(p.numel() for p in model.parameters())
