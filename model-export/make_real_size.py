"""Write one random-weight InternVL3 checkpoint with the REAL dimensions of InternVL3-1B-hf or InternVL3-2B-hf.

Everything except the weights and the tokenizer is what the real -hf folders carry: InternViT-300M-448px vision
tower, pixel-shuffle (0.5) + MLP projector, Qwen2.5-0.5B (1B) or Qwen2.5-1.5B (2B) decoder, vocabulary 151674,
448 px tiles of 256 tokens, 1..12 tiles. The tokenizer, chat template and processor files are make_tiny.py's (a
small byte-level BPE with the Qwen/InternVL special tokens): its ids (< 1300) all lie inside the 151674-row
embedding, the rows above are simply never used. The weights are random (std 0.02, transformers' own init), so the
model answers nothing sensible; this is for memory, size and speed at real scale.

Usage: .venv-export/bin/python model-export/make_real_size.py --size 1b|2b --out DIR
"""

import argparse
import time
from pathlib import Path

import torch
from transformers import GenerationConfig, GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration
from transformers import InternVLProcessor, InternVLVideoProcessor, Qwen2Config

from make_tiny import CHAT_TEMPLATE, build_tokenizer

# OpenGVLab/InternVL3-{1B,2B}-hf config.json, text part (Qwen2.5-0.5B / Qwen2.5-1.5B as InternVL3 ships them:
# InternVL unties lm_head from the embedding, hence 0.94B / 2.09B parameters in all).
TEXT = {
    "1b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
               intermediate_size=4864),
    "2b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
               intermediate_size=8960),
}
VOCAB = 151674  # Qwen2.5's 151643 + InternVL3's added tokens, the text config's vocab_size
# InternViT-300M-448px-V2_5 (transformers' InternVLVisionConfig defaults are exactly these, except attention_bias).
VISION = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
              hidden_act="gelu", image_size=[448, 448], patch_size=[14, 14], num_channels=3, attention_bias=True,
              use_qk_norm=False, use_mean_pooling=True, norm_type="layer_norm", layer_norm_eps=1e-6,
              layer_scale_init_value=0.1, use_absolute_position_embeddings=True, use_mask_token=False,
              initializer_range=0.02)
SEEDS = {"1b": 1, "2b": 2}


def build_config(size: str, tokenizer) -> InternVLConfig:
    t = TEXT[size]
    text = Qwen2Config(
        vocab_size=VOCAB, head_dim=t["hidden_size"] // t["num_attention_heads"], hidden_act="silu",
        max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
        use_sliding_window=False, attention_dropout=0.0, initializer_range=0.02,
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), **t,
    )
    return InternVLConfig(
        vision_config=VISION, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=256, downsample_ratio=0.5, projector_hidden_act="gelu",
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", required=True, choices=sorted(TEXT))
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    assert len(tokenizer) <= VOCAB
    config = build_config(args.size, tokenizer)
    torch.manual_seed(SEEDS[args.size])
    model = InternVLForConditionalGeneration(config).eval()
    # Non-zero vision position embeddings and CLS (transformers zeroes them) so tiles are not position-blind.
    with torch.no_grad():
        emb = model.model.vision_tower.embeddings
        emb.position_embeddings.normal_(0, 0.02)
        emb.cls_token.normal_(0, 0.02)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(args.out)
    ids = tokenizer.convert_tokens_to_ids
    GenerationConfig(eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")], pad_token_id=ids("<|endoftext|>"),
                     do_sample=False).save_pretrained(args.out)
    image_processor = GotOcr2ImageProcessor(
        size={"height": 448, "width": 448}, crop_to_patches=False, min_patches=1, max_patches=12,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=InternVLVideoProcessor(),
                      image_seq_length=256, chat_template=CHAT_TEMPLATE).save_pretrained(args.out)
    print(f"{args.size}: {params / 1e9:.3f} B parameters, written to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
