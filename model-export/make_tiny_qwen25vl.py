"""Write two tiny random-weight Qwen2.5-VL checkpoints (small, large) as transformers checkpoint folders.

They carry what a downloaded Qwen2.5-VL-*-Instruct folder carries (config.json, model.safetensors,
generation_config.json, tokenizer.json + tokenizer_config.json with Qwen2-VL's special tokens,
preprocessor_config.json, video_preprocessor_config.json, chat_template.jinja), so the exporter reads them exactly as
it reads a real one. The architecture is the real one (Qwen2_5_VLForConditionalGeneration: windowed ViT with
fullatt_block_indexes, 14 px patches, temporal patch 2, 2×2 merger, window 112 px, M-RoPE decoder) and so is the
image recipe (smart_resize to multiples of 28, CLIP statistics, bicubic); only widths, depths and max_pixels are
tiny (max_pixels 28·28·80: at most 80 visual tokens, so the fixtures stay small).

Usage: .venv-export/bin/python model-export/make_tiny_qwen25vl.py --out DIR   (writes DIR/small and DIR/large)
"""

import argparse
import json
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2TokenizerFast,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from make_tiny import train_bpe

# Qwen2.5-VL-*-Instruct's chat template, written from memory of the Qwen/Qwen2.5-VL-*-Instruct repositories
# (chat_template.json): a system turn "You are a helpful assistant." when the first message is not a system message,
# an image part becomes <|vision_start|><|image_pad|><|vision_end|> (optionally "Picture n: " before it with
# add_vision_id), a video part <|vision_start|><|video_pad|><|vision_end|>.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2-VL / Qwen2.5-VL's added tokens, in their order (ids 151643… in the real vocabulary).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MIN_PIXELS = 56 * 56  # the real checkpoints' 3136
MAX_PIXELS = 28 * 28 * 80  # tiny (real: 12845056); ≥ 336·168 and 140·420 so the fixture cases are not shrunk


def build_tokenizer() -> Qwen2TokenizerFast:
    """The tiny InternVL pair's byte-level BPE (make_tiny.train_bpe), with Qwen2-VL's specials."""
    tok = train_bpe(SPECIAL_TOKENS)
    # Qwen2.5-VL's tokenizer_config.json: no bos, eos <|im_end|>, pad <|endoftext|>.
    return Qwen2TokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                              pad_token="<|endoftext|>", unk_token=None, model_max_length=4096,
                              chat_template=CHAT_TEMPLATE)


def build_config(tokenizer, hidden: int, layers: int, heads: int) -> Qwen2_5_VLConfig:
    ids = tokenizer.convert_tokens_to_ids
    head_dim = hidden // heads
    # The real split of the rotary frequencies is 1/4 temporal, 3/8 height, 3/8 width ([16, 24, 24] of 64).
    section = [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]
    assert sum(section) == head_dim // 2, section
    vision = dict(depth=4, hidden_size=32, num_heads=4, intermediate_size=64, hidden_act="silu", in_channels=3,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
                  fullatt_block_indexes=[1, 3], out_hidden_size=hidden, initializer_range=0.2)
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=2, intermediate_size=2 * hidden, hidden_act="silu", max_position_embeddings=4096,
                rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
                rope_scaling={"type": "mrope", "mrope_section": section}, initializer_range=0.2,
                bos_token_id=None, eos_token_id=ids("<|im_end|>"))
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                            video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                            vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False)


def write_checkpoint(out: Path, tokenizer, hidden: int, layers: int, heads: int, seed: int) -> None:
    torch.manual_seed(seed)
    config = build_config(tokenizer, hidden, layers, heads)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.save_pretrained(out)
    architectures_at_top(out)
    ids = tokenizer.convert_tokens_to_ids
    # Qwen2.5-VL stops on <|im_end|> and <|endoftext|> (its generation_config.json; that file also samples with
    # repetition_penalty 1.05, which greedy conformance does not use).
    GenerationConfig(eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")], pad_token_id=ids("<|endoftext|>"),
                     do_sample=False).save_pretrained(out)
    save_processor(out, tokenizer, MAX_PIXELS)


def architectures_at_top(out: Path) -> None:
    """transformers 4.57 writes `architectures` into text_config (Qwen2_5_VLConfig delegates attributes to the text
    config); the Hub checkpoints have it at the top, where the exporter looks first."""
    path = out / "config.json"
    saved = json.loads(path.read_text())
    architectures = saved.get("architectures") or saved["text_config"]["architectures"]
    path.write_text(json.dumps({**saved, "architectures": architectures}, indent=2) + "\n")


def save_processor(out: Path, tokenizer, max_pixels: int) -> None:
    image_processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=max_pixels, patch_size=14,
                                            temporal_patch_size=2, merge_size=2, image_mean=CLIP_MEAN,
                                            image_std=CLIP_STD)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    main_into(parser.parse_args().out)


# Seeds picked so that every greedy step of the fixture cases (plain and pruned) has a top-2 logit gap ≥ 0.02 (over
# 100× the logits tolerance): random weights otherwise give near-ties that float error could flip.
SEEDS = {"small": 3, "large": 3}


def main_into(out: Path) -> None:
    tokenizer = build_tokenizer()
    write_checkpoint(out / "small", tokenizer, hidden=64, layers=2, heads=4, seed=SEEDS["small"])
    write_checkpoint(out / "large", tokenizer, hidden=96, layers=4, heads=6, seed=SEEDS["large"])


if __name__ == "__main__":
    main()
