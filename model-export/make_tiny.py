"""Write two tiny random-weight InternVL checkpoints (small, large) as transformers checkpoint folders.

They carry what a downloaded InternVL3-*-hf folder carries (config.json, model.safetensors, generation_config.json,
tokenizer.json + tokenizer_config.json with the image tokens, preprocessor_config.json, processor_config.json,
chat_template.jinja), so the exporter reads them exactly as it reads a real one. The vision grid and the image recipe
are the real ones (448 px tiles, 14 px patches, 256 tokens per tile, ImageNet statistics, max 12 tiles); only widths
and depths are tiny. Small and large differ in text width and depth, as a real pair does.

Two forms: InternVL3 (default: Qwen2 text, InternViT-300M form: layer norm, q/k/v biases) and, with
`--form internvl25-llama`, InternVL2/2.5's (InternLM2 text in transformers' Llama form: no biases, dynamic NTK rope
scaling, a tokenizer that frames the text with <s>, <|im_end|> as generation_config's stop while the text config
says </s>; InternViT-6B form: RMSNorm, qk-norm, no q/k/v biases). The tokenizer is the tiny byte-level BPE either
way (with each form's special tokens).

Usage: .venv-export/bin/python model-export/make_tiny.py --out DIR [--form internvl3|internvl25-llama]
       (writes DIR/small and DIR/large)
"""

import argparse
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import processors
from transformers import (
    GenerationConfig,
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    LlamaConfig,
    LlamaTokenizerFast,
    Qwen2Config,
    Qwen2TokenizerFast,
)

# InternVL3-hf's chat template, written from memory of the OpenGVLab/InternVL3-*-hf repositories (the same string
# as transformers' convert_internvl_weights_to_hf.py): Qwen2.5 turns, an image part becomes "<IMG_CONTEXT>\n",
# no built-in system prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{'<|im_start|>assistant\\n' }}{% endif %}"
)

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>",
    "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>", "<video>",
]

# Qwen2's pre-tokenizer split (tokenizer.json of Qwen2/Qwen2.5).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CORPUS = """
What is in this picture? The picture shows a red circle on a blue background.
Describe the image in detail. There is a small green square next to a large yellow triangle.
How many objects are there in the image? I can see three objects: a circle, a square and a triangle.
What color is the sky? The sky is light blue with a few white clouds near the top of the picture.
Is there a person in this photo? No, there is no person. The photo shows a quiet street with trees.
Where is the cat sitting? The cat is sitting on a wooden chair beside the open window.
What is written on the sign? The sign says "Open every day from nine to five".
Which shape is the largest? The largest shape is the orange rectangle in the lower left corner.
Can you count the apples on the table? There are five apples on the table, two red and three green.
What time of day is it? It looks like early evening, because the light is warm and the shadows are long.
Please answer briefly. Yes. No. Maybe. Left. Right. Top. Bottom. Center. One, two, three, four, five, six.
You are a helpful assistant. Answer the question about the image with a short sentence.
The dog runs across the green field while a boy throws a ball. A bird flies over the lake.
The kitchen has white walls, a black stove, a silver sink and a bowl of fruit on the counter.
Look at the top right corner: a blue star. Look at the bottom left corner: a purple moon.
This is a landscape photo of mountains and a river. This is a portrait of a woman with a hat.
The gradient goes from dark to bright. The colors change smoothly from red to green to blue.
Thank you! You're welcome. What else would you like to know about the picture?
A train crosses an old stone bridge under heavy rain. Umbrellas, bicycles and buses fill the busy market square.
The chart compares monthly sales: January was lowest, July was highest, and December recovered slightly.
Read the handwritten note: "Buy milk, bread, cheese, eggs and coffee before Saturday morning."
Zebras, giraffes, elephants and lions gather near the water hole at sunset in the national park.
The diagram explains photosynthesis: sunlight, water and carbon dioxide become sugar and oxygen.
A chef slices onions, garlic, peppers and tomatoes on a bamboo cutting board in a bright restaurant kitchen.
Football players celebrate a goal while thousands of supporters wave flags and scarves in the stadium.
The museum displays ancient pottery, bronze statues, golden jewellery and painted wooden masks.
Snow covers the quiet village; smoke rises from chimneys and children build a snowman beside the church.
Question: which animal is jumping? Answer: the kangaroo. Question: what is the weather? Answer: sunny and windy.
The screenshot shows a settings menu with buttons for volume, brightness, language, privacy and updates.
Fishermen repair nets on the harbour while seagulls circle above colourful boats and wooden crates.
The laboratory contains microscopes, glass bottles, test tubes, computers and a whiteboard full of equations.
Jazz musicians play saxophone, trumpet, piano and drums on a small stage lit by purple lamps.
"""


def train_bpe(special_tokens: list[str]) -> Tokenizer:
    """A real byte-level BPE (Qwen2's split and ByteLevel, NFC), trained on CORPUS, with a family's specials appended
    after the learned vocabulary like Qwen's added tokens (make_tiny_qwen25vl.py uses it with Qwen2-VL's)."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    tok.add_special_tokens(special_tokens)
    return tok


# The processor reads these four attributes; real checkpoints carry them as extra_special_tokens.
IMAGE_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}


def build_tokenizer() -> Qwen2TokenizerFast:
    """The BPE with the Qwen/InternVL specials."""
    tok = train_bpe(SPECIAL_TOKENS)
    return Qwen2TokenizerFast(
        tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        extra_special_tokens=IMAGE_TOKENS, model_max_length=4096, chat_template=CHAT_TEMPLATE,
    )


# InternVL2/2.5's InternLM2 specials (<unk>, <s>, </s>, its chat tokens, InternVL's image tokens), appended after
# the learned vocabulary as the InternVL3 form's are (the real ones sit at 0-2 and 92538+: ids are data).
LLAMA_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>",
                        "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>", "<video>"]


def build_llama_tokenizer() -> LlamaTokenizerFast:
    """The BPE with InternLM2's specials, framed as transformers' converted InternVL2.5 tokenizer frames text:
    <s> in front of every encoded text (add_bos_token), nothing after."""
    tok = train_bpe(LLAMA_SPECIAL_TOKENS)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return LlamaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>",
        add_bos_token=True, add_eos_token=False, legacy=False, extra_special_tokens=IMAGE_TOKENS, model_max_length=4096,
        chat_template=CHAT_TEMPLATE,
    )


# Vision towers in the two InternViT forms, tiny widths (the grid, tiles and tokens per tile are the real ones).
VISION = {
    # InternViT-300M (InternVL3, InternVL2.5 up to 8B): LayerNorm, q/k/v biases.
    "300m": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 attention_bias=True, use_qk_norm=False, norm_type="layer_norm"),
    # InternViT-6B (InternVL2/2.5 from 26B): RMSNorm, qk-norm over all heads, no q/k/v biases (qkv_bias false).
    "6b": dict(hidden_size=40, num_hidden_layers=2, num_attention_heads=5, intermediate_size=80,
               attention_bias=False, use_qk_norm=True, norm_type="rms_norm"),
}


def text_config(form: str, tokenizer, hidden: int, layers: int, heads: int):
    common = dict(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=2, head_dim=hidden // heads, intermediate_size=2 * hidden, hidden_act="silu",
                  max_position_embeddings=4096, rope_theta=1e6, tie_word_embeddings=False, initializer_range=0.2)
    if form == "internvl3":
        return Qwen2Config(**common, rms_norm_eps=1e-6, use_sliding_window=False, bos_token_id=None,
                           eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    # InternLM2 as transformers' conversion writes it: LlamaConfig, eps 1e-5, dynamic NTK (factor 2 as
    # InternVL2.5-2B/8B ship it), bos <s>, eos </s> (the stop is generation_config's <|im_end|>).
    ids = tokenizer.convert_tokens_to_ids
    return LlamaConfig(**common, rms_norm_eps=1e-5, rope_scaling={"type": "dynamic", "factor": 2.0},
                       attention_bias=False, mlp_bias=False, pretraining_tp=1,
                       bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("</s>"))


def build_config(tokenizer, hidden: int, layers: int, heads: int, form: str = "internvl3") -> InternVLConfig:
    vision = dict(VISION["300m" if form == "internvl3" else "6b"], image_size=[448, 448], patch_size=[14, 14],
                  use_mean_pooling=True, layer_scale_init_value=0.1, initializer_range=0.2)
    return InternVLConfig(
        vision_config=vision, text_config=text_config(form, tokenizer, hidden, layers, heads),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=256, downsample_ratio=0.5, projector_hidden_act="gelu",
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )


def save_processor(out: Path, tokenizer) -> None:
    """The processor's files as an InternVL -hf folder carries them (InternVL3 and InternVL2.5 alike): the real
    preprocessor config (448 px, ImageNet statistics, 1..12 tiles; crop_to_patches false there too:
    InternVLProcessor turns it on by its own defaults, see the exporter's image recipe), the tokenizer and the chat
    template. real_models.py writes real-dimension checkpoints' processors with it."""
    image_processor = GotOcr2ImageProcessor(
        size={"height": 448, "width": 448}, crop_to_patches=False, min_patches=1, max_patches=12,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                  video_processor=InternVLVideoProcessor(), image_seq_length=256,
                                  chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)


def write_processor_files(out: Path, tokenizer, stop_tokens: list[str], pad_token: str) -> None:
    """generation_config.json (the stop tokens) and the processor's files."""
    ids = tokenizer.convert_tokens_to_ids
    GenerationConfig(eos_token_id=[ids(t) for t in stop_tokens], pad_token_id=ids(pad_token),
                     do_sample=False).save_pretrained(out)
    save_processor(out, tokenizer)


# Stop tokens (generation_config.json): InternVL3-hf stops on <|im_end|> and <|endoftext|>; transformers'
# conversion gives the Llama-text InternVL2.5 <|im_end|> alone.
STOPS = {"internvl3": (["<|im_end|>", "<|endoftext|>"], "<|endoftext|>"), "internvl25-llama": (["<|im_end|>"], "</s>")}


def write_checkpoint(out: Path, tokenizer, hidden: int, layers: int, heads: int, seed: int,
                     form: str = "internvl3") -> None:
    torch.manual_seed(seed)
    config = build_config(tokenizer, hidden, layers, heads, form)
    model = InternVLForConditionalGeneration(config).eval()
    model.save_pretrained(out)
    write_processor_files(out, tokenizer, *STOPS[form])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--form", choices=sorted(STOPS), default="internvl3")
    args = parser.parse_args()
    main_into(args.out, args.form)


# Seeds picked so that every greedy step of the fixture cases has a top-2 logit gap ≥ 0.01 (over 60× the
# logits tolerance): random weights otherwise give near-ties that float error could flip.
SEEDS = {"internvl3": (4, 6), "internvl25-llama": (4, 6)}


def main_into(out: Path, form: str = "internvl3") -> None:
    tokenizer = build_tokenizer() if form == "internvl3" else build_llama_tokenizer()
    small, large = SEEDS[form]
    write_checkpoint(out / "small", tokenizer, hidden=64, layers=2, heads=4, seed=small, form=form)
    write_checkpoint(out / "large", tokenizer, hidden=96, layers=4, heads=6, seed=large, form=form)


if __name__ == "__main__":
    main()
