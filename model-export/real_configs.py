"""The dimensions of the paper's family in transformers' form, for random real-dimension checkpoints
(make_real_size.py) and the README's memory figures: InternVL2.5-2B, -8B and -26B as transformers'
convert_internvl_weights_to_hf.py turns them into InternVLForConditionalGeneration (InternLM2 → LlamaConfig, its
wqkv split into q/k/v; InternViT's qk_normalization → use_qk_norm, qkv_bias → attention_bias).

Sources (the Hugging Face Hub is not reachable from the machines this was written on):
- which parts: the InternVL2.5 report's table (arXiv 2412.05271) and the model cards: 2B = InternViT-300M-448px-V2_5
  + internlm2_5-1_8b-chat; 8B = InternViT-300M-448px-V2_5 + internlm2_5-7b-chat; 26B = InternViT-6B-448px-V2_5 +
  internlm2_5-20b-chat. Their parameter counts there: 2.2B, 8.1B, 25.5B (`python real_configs.py` prints the counts
  of these dimensions: they agree).
- the InternLM2 and InternViT fields: copies of OpenGVLab's config.json `llm_config` / `vision_config` (InternVL2-8B:
  internlm2_5-7b-chat; InternVL2-26B: internlm2-chat-20b and InternViT-6B) and InternLM2.5's published dimensions
  (1.8B: 24 layers, width 2048; 20B: 48 layers, width 6144, 48 heads, 8 KV heads, MLP 16384). vocab_size 92553 is
  InternVL's (InternLM2's 92544 + its image and box tokens); the image context token <IMG_CONTEXT> is 92546 and the
  stop token <|im_end|> 92542 (the conversion script's generation config).
- rope: InternLM2 ships {"type": "dynamic", "factor": 2.0} (2.5-1.8B, 2.5-7B; InternVL2-26B's internlm2-chat-20b
  says 3.0; the 2.5-20B factor is not confirmed here). The exporter reproduces dynamic NTK exactly up to
  max_position_embeddings (32768), which is the pack's context_tokens, whatever the factor.
"""

from transformers import InternVLConfig, LlamaConfig

# InternLM2 in transformers' Llama form (what every size shares).
INTERNLM2 = dict(vocab_size=92553, hidden_act="silu", max_position_embeddings=32768, rope_theta=1_000_000.0,
                 rope_scaling={"type": "dynamic", "factor": 2.0}, rms_norm_eps=1e-5, tie_word_embeddings=False,
                 attention_bias=False, mlp_bias=False, pretraining_tp=1, initializer_range=0.02,
                 bos_token_id=1, eos_token_id=2, pad_token_id=2)

TEXT = {
    "2b": dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8,
               intermediate_size=8192),  # internlm2_5-1_8b-chat
    "8b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
               intermediate_size=14336),  # internlm2_5-7b-chat
    "26b": dict(hidden_size=6144, num_hidden_layers=48, num_attention_heads=48, num_key_value_heads=8,
                intermediate_size=16384, rope_scaling={"type": "dynamic", "factor": 3.0}),  # internlm2_5-20b-chat
}

VISION_COMMON = dict(hidden_act="gelu", image_size=[448, 448], patch_size=[14, 14], num_channels=3,
                     use_mean_pooling=True, layer_norm_eps=1e-6, layer_scale_init_value=0.1,
                     use_absolute_position_embeddings=True, use_mask_token=False, initializer_range=0.02)
# InternViT-300M-448px-V2_5 (as in InternVL3) and InternViT-6B-448px-V2_5 (45 of InternViT-6B's 48 layers).
INTERNVIT_300M = dict(VISION_COMMON, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                      intermediate_size=4096, attention_bias=True, use_qk_norm=False, norm_type="layer_norm")
INTERNVIT_6B = dict(VISION_COMMON, hidden_size=3200, num_hidden_layers=45, num_attention_heads=25,
                    intermediate_size=12800, attention_bias=False, use_qk_norm=True, norm_type="rms_norm")
VISION = {"2b": INTERNVIT_300M, "8b": INTERNVIT_300M, "26b": INTERNVIT_6B}

# The paper's reference code (NUS-HPC-AI-Lab/SGL, textvqa2B-26B.sh) prunes the large model at layer
# int(layers × 0.4) keeping int(visual tokens × 0.4): 26B's 48 layers → 19, 8B's 32 → 12.
PRUNE_DEPTH = 0.4


def prune_layer(size: str) -> int:
    return int(TEXT[size]["num_hidden_layers"] * PRUNE_DEPTH)


def internvl25_config(size: str, image_token_id: int, eos_token_id: int) -> InternVLConfig:
    """The InternVLConfig of one size; the token ids are the tokenizer's (the real ones: 92546, 92542)."""
    text = LlamaConfig(**(INTERNLM2 | TEXT[size] | {"eos_token_id": eos_token_id}))  # head_dim 128 in all three
    return InternVLConfig(vision_config=VISION[size], text_config=text, image_token_id=image_token_id,
                          image_seq_length=256, downsample_ratio=0.5, projector_hidden_act="gelu",
                          vision_feature_layer=-1, vision_feature_select_strategy="default")


def spec(size: str):
    """real_models.Spec of one size, for make_real_size.py (real_models.CONFIGS can take
    `{f"internvl2.5-{s}": real_configs.spec(s) for s in real_configs.TEXT}`): make_tiny's InternLM2-form tokenizer
    (its ids lie inside the 92553-row embedding), the InternVL -hf processor files, <|im_end|> as the stop."""
    import make_tiny
    from real_models import Spec, internvl_after_init
    from transformers import InternVLForConditionalGeneration

    def build(tokenizer) -> InternVLConfig:
        ids = tokenizer.convert_tokens_to_ids
        return internvl25_config(size, image_token_id=ids("<IMG_CONTEXT>"), eos_token_id=ids("</s>"))

    return Spec(InternVLForConditionalGeneration, make_tiny.build_llama_tokenizer, build, make_tiny.save_processor,
                ["<|im_end|>"], f"OpenGVLab/InternVL2_5-{size.upper()} in transformers' form (real_configs.py)",
                internvl_after_init)


def main() -> None:
    """Parameter counts (meta device: nothing allocated) and the memory each weight type takes."""
    from transformers import InternVLForConditionalGeneration
    from transformers.integrations.accelerate import init_empty_weights

    print("| model | parameters | float32 GiB | float16 GiB | KV cache per token | prune layer (0.4) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in TEXT:
        config = internvl25_config(size, image_token_id=92546, eos_token_id=92542)
        with init_empty_weights(include_buffers=False):
            model = InternVLForConditionalGeneration(config)
        params = sum(p.numel() for p in model.parameters())
        t = config.text_config
        kv = 2 * t.num_hidden_layers * t.num_key_value_heads * t.head_dim * 4  # keys and values, float32
        print(f"| InternVL2.5-{size.upper()} | {params / 1e9:.3f} B | {params * 4 / 2**30:.1f} | "
              f"{params * 2 / 2**30:.1f} | {kv // 1024} KiB | {prune_layer(size)} of {t.num_hidden_layers} |")


if __name__ == "__main__":
    main()
