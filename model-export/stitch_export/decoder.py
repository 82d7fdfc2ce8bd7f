"""Generic Llama-style decoder graphs: the embed graph and a segment of layers [first, end) with explicit attention,
reading the weights of transformers' own layers. A segment also reports the attention each key position receives
(SGP's weighted sum) and the last query's attention at its last layer (FastV)."""

from dataclasses import dataclass

import torch
from torch import nn

from .family import Unsupported


@dataclass(frozen=True)
class TextModelType:
    """What sets one Llama-style decoder apart from another, as far as the segment graph is concerned. Everything
    else (pre-norm RMSNorm, q/k/v/o projections with or without biases, GQA, SwiGLU MLP with or without biases) is
    the same layer shape, and the graph calls transformers' own modules for it."""

    positions: str  # "1d" (one index per token) or "mrope" (Qwen2-VL's 3-D positions, needs mrope_section)
    head_dim_from_config: bool  # whether the attention reads config.head_dim (else hidden / heads)


# Decoders whose layers this module reproduces, keyed by the text config's model_type (not by a family).
TEXT_MODEL_TYPES = {
    "qwen2": TextModelType(positions="1d", head_dim_from_config=True),  # InternVL3's Qwen2.5
    # InternVL2/2.5's InternLM2 as transformers' convert_internvl_weights_to_hf.py writes it (wqkv split into
    # q/k/v): no biases, rotary with InternLM2's rope_theta and dynamic NTK scaling.
    "llama": TextModelType(positions="1d", head_dim_from_config=True),
    "qwen2_5_vl_text": TextModelType(positions="mrope", head_dim_from_config=False),  # Qwen2_5_VLAttention
}
SUPPORTED_TEXT_MODEL_TYPES = tuple(TEXT_MODEL_TYPES)


def text_model_type(cfg) -> TextModelType:
    kind = TEXT_MODEL_TYPES.get(cfg.model_type)
    if kind is None:
        raise Unsupported(f"text model_type {cfg.model_type!r} is not supported (supported: {SUPPORTED_TEXT_MODEL_TYPES})")
    return kind
# lm_head weights of this many elements or more are sliced along the vocabulary (SegmentGraph.head): 1 GiB in float32.
HEAD_SLICE_ELEMENTS = 1 << 28


def check_text_config(cfg) -> None:
    """Refuse decoder options the segment graph does not reproduce."""
    kind = text_model_type(cfg)
    rope_positions(cfg)  # refuses rope scaling the graph does not reproduce
    if not kind.head_dim_from_config and cfg.hidden_size % cfg.num_attention_heads:
        raise Unsupported(f"hidden not divisible by heads ({cfg.model_type} uses head_dim = hidden / heads)")
    if getattr(cfg, "partial_rotary_factor", 1.0) != 1.0:
        raise Unsupported(f"partial_rotary_factor {cfg.partial_rotary_factor} is not supported (rotary on all dims)")
    if getattr(cfg, "use_sliding_window", False) or "sliding_attention" in (getattr(cfg, "layer_types", None) or []):
        raise Unsupported("sliding-window attention is not supported")
    if cfg.hidden_act != "silu":
        raise Unsupported(f"hidden_act {cfg.hidden_act!r} is not supported (SwiGLU with silu only)")
    # Llama's pretraining_tp is not read by transformers 4.57's forward (the slices it once summed are the same
    # product), so any value gives the same layer.


def rope_type(cfg) -> str:
    scaling = getattr(cfg, "rope_scaling", None) or {}
    return scaling.get("rope_type", scaling.get("type", "default"))


def rope_positions(cfg) -> tuple[str, list[int] | None]:
    """("1d", None) or ("mrope", mrope_section); anything else is refused."""
    scaling = getattr(cfg, "rope_scaling", None)
    kind = rope_type(cfg)
    if text_model_type(cfg).positions == "mrope":
        # Qwen2.5-VL configs say {"type": "mrope", "mrope_section": [...]}; transformers rewrites the type to "default"
        # (M-RoPE uses the default frequencies). Any other type (linear, dynamic, yarn …) is refused.
        section = (scaling or {}).get("mrope_section")
        if kind not in ("default", "mrope") or not section:
            raise Unsupported(f"rope_scaling {scaling!r} is not supported (only M-RoPE with default frequencies)")
        section = [int(x) for x in section]
        if len(section) != 3 or sum(section) * 2 != head_dim(cfg):
            raise Unsupported(f"mrope_section {section} must have 3 parts summing to head_dim / 2 = {head_dim(cfg) // 2}")
        return "mrope", section
    # Dynamic NTK (InternLM2's {"type": "dynamic", "factor": f}) rescales the base only once a sequence is longer
    # than max_position_embeddings (transformers' dynamic_rope_update: "growth" when max(position) + 1 exceeds it);
    # up to that length its frequencies are the default ones, computed by the same formula. The pack's
    # context_tokens is max_position_embeddings (see context_tokens) and the engine refuses a prompt plus
    # max_tokens beyond it, so the default rotary is exact for every sequence the engine runs.
    if kind not in ("default", "dynamic"):
        raise Unsupported(f"rope_scaling {scaling!r} is not supported (only default rotary, or dynamic NTK within "
                          "max_position_embeddings)")
    return "1d", None


def context_tokens(cfg) -> int:
    """The longest sequence (prompt + generated) the pack may run: max_position_embeddings. Within it every rotary
    type accepted above equals the graph's (dynamic NTK changes nothing until a sequence exceeds it)."""
    return int(cfg.max_position_embeddings)


def head_dim(cfg) -> int:
    if not text_model_type(cfg).head_dim_from_config:  # Qwen2_5_VLAttention ignores any head_dim in the config
        return cfg.hidden_size // cfg.num_attention_heads
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def decoder_manifest(cfg) -> dict:
    positions, section = rope_positions(cfg)
    rope = {"theta": float(cfg.rope_theta), "positions": positions} | ({"mrope_section": section} if section else {})
    return {
        "hidden": cfg.hidden_size, "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads,
        "kv_heads": cfg.num_key_value_heads, "head_dim": head_dim(cfg), "mlp_hidden": cfg.intermediate_size,
        "mlp": "swiglu", "vocab": cfg.vocab_size, "rope": rope,
        "dtype": "float32",
    }


class EmbedGraph(nn.Module):
    def __init__(self, embed_tokens: nn.Embedding):
        super().__init__()
        self.embed_tokens = embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class SegmentGraph(nn.Module):
    """Layers [first, end) of a Llama-style decoder, batch 1, as the engine calls them (see the pack contract)."""

    def __init__(self, cfg, decoder, lm_head, first: int, end: int):
        super().__init__()
        self.first, self.end, self.last = first, end, end == cfg.num_hidden_layers
        self.layers = nn.ModuleList(decoder.layers[first:end])
        self.norm, self.lm_head = (decoder.norm, lm_head) if self.last else (None, None)
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, head_dim(cfg)
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.positions, self.mrope_section = rope_positions(cfg)

    def input_names(self) -> list[str]:
        names = ["hidden_states", "position_ids", "attention_mask", "query_weights"]
        for layer in range(self.first, self.end):
            names += [f"past_key_{layer}", f"past_value_{layer}"]
        return names + (["logit_rows"] if self.last else [])

    def output_names(self) -> list[str]:
        names = ["logits" if self.last else "hidden_out"]
        for layer in range(self.first, self.end):
            names += [f"present_key_{layer}", f"present_value_{layer}"]
        return names + ["attention_received", "attention_last"]

    def dynamic_axes(self) -> dict:
        axes = {"hidden_states": {1: "T"}, "position_ids": {self.position_axis(): "T"}, "attention_mask": {1: "PT"},
                "query_weights": {1: "T"}, "attention_received": {1: "PT"}, "attention_last": {1: "PT"}}
        for layer in range(self.first, self.end):
            axes |= {f"past_key_{layer}": {2: "P"}, f"past_value_{layer}": {2: "P"},
                     f"present_key_{layer}": {2: "PT"}, f"present_value_{layer}": {2: "PT"}}
        if self.last:
            axes |= {"logit_rows": {0: "R"}, "logits": {1: "R"}}
        else:
            axes |= {"hidden_out": {1: "T"}}
        return axes

    def sample_inputs(self, t: int = 3, p: int = 2) -> tuple:
        """Trace inputs with T ≠ P ≠ 1 so that no size is frozen to a constant."""
        hidden = self.layers[0].hidden_size
        past = [torch.randn(1, self.kv_heads, p, self.head_dim) for _ in range(2 * (self.end - self.first))]
        rows = (torch.tensor([t - 1], dtype=torch.int64),) if self.last else ()
        positions = torch.arange(p, p + t)[None]
        if self.positions == "mrope":  # three different rows, so that no row is folded into another
            positions = torch.stack([positions, positions + 1, positions + 2])
        return (torch.randn(1, t, hidden), positions, torch.ones(1, p + t, dtype=torch.int64),
                torch.ones(1, t), *past, *rows)

    def forward(self, hidden_states, position_ids, attention_mask, query_weights, *rest):
        n = 2 * (self.end - self.first)
        past, logit_rows = rest[:n], (rest[n] if self.last else None)
        x = hidden_states
        t, p = x.shape[1], past[0].shape[2]
        cos, sin = self.rotary(position_ids)
        # Query i (cache index p + i) sees key j when j ≤ p + i and attention_mask[j] = 1.
        keys = torch.arange(p + t)
        allowed = (keys[None, :] <= (torch.arange(t) + p)[:, None]) & (attention_mask[0] > 0)[None, :]
        received = torch.zeros(1, p + t)
        presents = []
        for i, layer in enumerate(self.layers):
            x, k, v, probs = self.layer(layer, x, cos, sin, allowed, past[2 * i], past[2 * i + 1])
            presents += [k, v]
            # probs [1, kv_heads, rep, T, S]: summed over every query head (both head axes) and weighted query.
            received = received + (probs * query_weights[:, None, None, :, None]).sum(dim=(1, 2, 3))
        last = probs[..., -1, :].sum(dim=(1, 2))
        if self.last:
            x = self.head(self.norm(x.index_select(1, logit_rows)))
        return (x, *presents, received, last)

    def head(self, h):
        """lm_head, as one MatMul, or over slices of the vocabulary when its weight would make a tensor of 1 GiB or
        more (an 8B model's 151674 × 3584 is 2.2 GB in float32: protobuf cannot hold a tensor of 2 GiB, and the
        quantizers copy tensors through it). Each logit is the same dot product either way."""
        w, b = self.lm_head.weight, self.lm_head.bias
        rows = max(1, HEAD_SLICE_ELEMENTS // w.shape[1])
        if w.shape[0] <= rows:
            return self.lm_head(h)
        logits = torch.cat([h @ w[i:i + rows].T for i in range(0, w.shape[0], rows)], dim=-1)
        return logits if b is None else logits + b

    def position_axis(self) -> int:
        return 1 if self.positions == "1d" else 2

    def rotary(self, position_ids):
        """cos, sin [1, 1, T, head_dim] at the given (original) positions: the position scheme's one hook."""
        freqs = position_ids.to(torch.float32)[..., None] * self.inv_freq  # [1, T, d/2] or [3, 1, T, d/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        if self.positions == "1d":  # Qwen2RotaryEmbedding / LlamaRotaryEmbedding: cat(freqs, freqs)
            return cos[:, None], sin[:, None]
        # apply_multimodal_rotary_pos_emb: the head dims split by mrope_section (twice, for the two halves), chunk i
        # taken from row i % 3 (temporal, height, width).
        sections = self.mrope_section * 2
        pick = lambda m: torch.cat([c[i % 3] for i, c in enumerate(m.split(sections, dim=-1))], dim=-1)[:, None]
        return pick(cos), pick(sin)

    def layer(self, layer, x, cos, sin, allowed, past_k, past_v):
        """Qwen2DecoderLayer / LlamaDecoderLayer.forward with eager attention, the cache concatenated explicitly."""
        attn = layer.self_attn
        h = layer.input_layernorm(x)
        q = attn.q_proj(h).view(1, -1, self.heads, self.head_dim).transpose(1, 2)
        k = attn.k_proj(h).view(1, -1, self.kv_heads, self.head_dim).transpose(1, 2)
        v = attn.v_proj(h).view(1, -1, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = torch.cat([past_k, k * cos + rotate_half(k) * sin], dim=2)  # keys are cached after RoPE
        v = torch.cat([past_v, v], dim=2)
        # Grouped-query attention without repeat_kv: query head h reads key/value head h // rep (transformers'
        # repeat_kv order), so the rep query heads of one key/value head are stacked as rows of one MatMul against
        # that head's cache. Expanding the cache to every query head instead copied it rep times per layer and per
        # decode step (7x for Qwen2.5-VL-7B: ~0.6 GB a step at 800 tokens), a decode cost growing with the context.
        rep = self.heads // self.kv_heads
        t = q.shape[2]
        q_grouped = q.reshape(1, self.kv_heads, rep * t, self.head_dim)
        scores = (q_grouped @ k.transpose(2, 3)) * attn.scaling  # [1, kv_heads, rep·T, S]
        scores = scores.view(1, self.kv_heads, rep, t, -1).masked_fill(~allowed, torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)  # [1, kv_heads, rep, T, S]
        y = probs.view(1, self.kv_heads, rep * t, -1) @ v  # [1, kv_heads, rep·T, head_dim]
        y = y.view(1, self.heads, t, self.head_dim).transpose(1, 2).reshape(1, -1, self.heads * self.head_dim)
        x = x + attn.o_proj(y)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
        return x, k, v, probs
