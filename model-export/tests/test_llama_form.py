"""InternVL2/2.5's form: a Llama (InternLM2) text model and the InternViT-6B vision form. What the exporter accepts
(dynamic NTK within max_position_embeddings, Llama's biases, BOS framing) it verifies against transformers; what
the graphs do not reproduce it refuses."""

import json

import pytest
import torch
from transformers import InternVLForConditionalGeneration, LlamaConfig, LlamaModel
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

import make_tiny
import real_configs
from checkpoint_edits import edited_checkpoint
from stitch_export.decoder import SegmentGraph, check_text_config, decoder_manifest
from stitch_export.families.internvl import check_vision_config
from stitch_export.family import Unsupported
from stitch_export.pack import export_pack

FORM = "internvl25-llama"


@pytest.fixture(scope="session")
def llama_checkpoints(tmp_path_factory):
    out = tmp_path_factory.mktemp("llama-checkpoints")
    make_tiny.main_into(out, FORM)
    return out


def rotary_pair(max_positions: int):
    """transformers' LlamaRotaryEmbedding with InternLM2's dynamic NTK, and the segment graph's rotary."""
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1,
                      intermediate_size=32, vocab_size=8, max_position_embeddings=max_positions, rope_theta=1e6,
                      rope_scaling={"type": "dynamic", "factor": 2.0})
    check_text_config(cfg)
    decoder = LlamaModel(cfg).eval()
    return LlamaRotaryEmbedding(cfg), SegmentGraph(cfg, decoder, torch.nn.Identity(), 0, 1)


def test_dynamic_ntk_is_the_default_rotary_up_to_max_position_embeddings():
    theirs, ours = rotary_pair(256)
    positions = torch.arange(256)[None]  # the longest sequence a pack with context_tokens 256 runs
    cos, sin = theirs(torch.zeros(1), positions)
    our_cos, our_sin = ours.rotary(positions)
    assert torch.equal(our_cos[:, 0], cos) and torch.equal(our_sin[:, 0], sin)


def test_dynamic_ntk_rescales_beyond_max_position_embeddings_which_the_pack_never_reaches():
    theirs, ours = rotary_pair(256)
    positions = torch.arange(257)[None]  # one past: transformers grows the base, the graph would not
    cos, _ = theirs(torch.zeros(1), positions)
    assert (ours.rotary(positions)[0][:, 0] - cos).abs().max() > 1e-3


@pytest.mark.parametrize("size", sorted(real_configs.TEXT))
def test_the_real_internvl25_configs_pass_the_exporters_checks(size):
    config = real_configs.internvl25_config(size, image_token_id=92546, eos_token_id=92542)
    check_vision_config(config)
    check_text_config(config.text_config)
    assert decoder_manifest(config.text_config)["head_dim"] == 128


@pytest.mark.parametrize("size, published", [("2b", 2.2), ("8b", 8.1), ("26b", 25.5)])
def test_the_real_dimensions_give_the_published_parameter_counts(size, published):
    """The InternVL2.5 report's sizes (to 0.1 B) from real_configs' dimensions, counted on the meta device."""
    import real_models
    assert round(real_models.parameter_count(real_configs.spec(size)) / 1e9, 1) == published


def test_the_llama_form_packs_say_what_the_engine_needs(llama_checkpoints, tmp_path):
    """Exports the 6B-form small and checks the manifest (the committed fixtures are verified by the same run)."""
    manifest = export_pack(llama_checkpoints / "small", "small", tmp_path, [], log=lambda *a: None)
    assert manifest["provenance"]["verification"]["tokens_equal"]
    assert manifest["decoder"]["rope"] == {"theta": 1e6, "positions": "1d"}
    prompt = manifest["prompt"]
    assert prompt["context_tokens"] == 4096  # max_position_embeddings: the dynamic NTK bound
    assert prompt["chat_template"].startswith("{{ bos_token }}") and prompt["bos_token"] == "<s>"
    tokenizer = json.loads((tmp_path / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    assert prompt["stop_token_ids"] == [ids["<|im_end|>"]]  # generation_config's, not the text config's </s>


def test_llama_biases_are_reproduced(llama_checkpoints, tmp_path):
    """Llama's attention_bias (q/k/v/o) and mlp_bias are off in InternLM2 but legal: the graph calls the modules."""
    tokenizer = make_tiny.build_llama_tokenizer()
    config = make_tiny.build_config(tokenizer, 64, 2, 4, FORM)
    config.text_config.attention_bias = config.text_config.mlp_bias = True
    torch.manual_seed(4)
    model = InternVLForConditionalGeneration(config).eval()
    with torch.no_grad():  # transformers initialises biases to zero; give them values that show
        for name, p in model.model.language_model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.2)
    model.save_pretrained(tmp_path / "ckpt")
    make_tiny.write_processor_files(tmp_path / "ckpt", tokenizer, *make_tiny.STOPS[FORM])
    manifest = export_pack(tmp_path / "ckpt", "small", tmp_path / "pack", [], log=lambda *a: None)
    figures = manifest["provenance"]["verification"]
    assert figures["logits"] < 2e-4 and figures["attention_segment"] < 2e-4, figures


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["text_config"].update(rope_scaling={"rope_type": "linear", "factor": 2.0}), "rope_scaling"),
    (lambda c: c["text_config"].update(rope_scaling={"rope_type": "yarn", "factor": 2.0}), "rope_scaling"),
    (lambda c: c["text_config"].update(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 1024}), "rope_scaling"),
    (lambda c: c["text_config"].update(partial_rotary_factor=0.5), "partial_rotary_factor"),
    (lambda c: c["text_config"].update(hidden_act="gelu"), "hidden_act"),
    (lambda c: c["vision_config"].update(use_mean_pooling=False), "use_mean_pooling"),
    (lambda c: c["vision_config"].update(hidden_act="relu"), "activations"),
    (lambda c: c.update(projector_hidden_act="relu"), "activations"),
    (lambda c: c["vision_config"].update(use_absolute_position_embeddings=False), "absolute position"),
])
def test_unsupported_llama_form_options_are_refused(llama_checkpoints, tmp_path, edit, message):
    with pytest.raises(Unsupported, match=message):
        export_pack(edited_checkpoint(llama_checkpoints, tmp_path, edit), "small", tmp_path / "pack", [])


def test_a_tokenizer_that_frames_text_with_more_than_bos_is_refused(llama_checkpoints, tmp_path):
    checkpoint = edited_checkpoint(llama_checkpoints, tmp_path, lambda c: None)
    path = checkpoint / "tokenizer_config.json"  # LlamaTokenizerFast builds its post-processor from these flags
    path.write_text(json.dumps(json.loads(path.read_text()) | {"add_eos_token": True}))
    with pytest.raises(Unsupported, match="frames text"):
        export_pack(checkpoint, "small", tmp_path / "pack", [])


def test_a_template_that_writes_an_image_part_as_another_token_is_refused(llama_checkpoints, tmp_path):
    """convert_internvl_weights_to_hf.py's template renders an image as "<image>", which InternVLProcessor does not
    expand: such a checkpoint would run with no pixels at all."""
    checkpoint = edited_checkpoint(llama_checkpoints, tmp_path, lambda c: None)
    path = checkpoint / "chat_template.jinja"
    path.write_text(path.read_text().replace("<IMG_CONTEXT>", "<image>"))
    with pytest.raises(Unsupported, match="image part"):
        export_pack(checkpoint, "small", tmp_path / "pack", [])
