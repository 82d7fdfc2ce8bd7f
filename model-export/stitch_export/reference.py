"""The transformers reference, computed one decoder layer at a time (eager attention, transformers' own layer
modules), so that only one layer's weights are in memory.

Decoding is teacher-forced: each sequence is the prompt followed by the tokens the pack chose, run through every
layer at once with a causal mask. Row S-1+i of the result is what transformers predicts at decode step i given the
same prefix the pack had; the attention a decode step's query gives is the same row of the full causal attention
(the KV cache changes nothing under a causal mask). A pruned sequence drops the visual rows not kept before layer
K (their hidden states, hence their keys and values, never reach layers ≥ K); positions stay the original ones."""

from dataclasses import dataclass, field

import numpy as np
import torch

from .family import Family, Prepared
from .lazy_model import LazyModel


@dataclass
class Forced:
    """One sequence transformers runs: a case's prompt and the pack's tokens, optionally pruned."""

    prepared: Prepared
    tokens: list[int]  # the pack's: step i's argmax (the last one is never fed back)
    prune: tuple[int, list[int]] | None = None  # (layer K, kept visual indices)
    segments: list[tuple[int, int]] = field(default_factory=list)  # where to sum attention (unpruned only)
    # Results, per step: logits [vocab]; per segment, per call: attention received [P+T] and the last query's [P+T].
    logits: list[torch.Tensor] = field(default_factory=list)
    received: list[list[torch.Tensor]] = field(default_factory=list)
    last: list[list[torch.Tensor]] = field(default_factory=list)
    hidden: torch.Tensor | None = None
    positions: torch.Tensor | None = None
    prompt_rows: int = 0  # rows of the (possibly pruned) prompt


def causal_mask(t: int) -> torch.Tensor:
    """Additive [1, 1, T, T] mask: query i sees keys j ≤ i (eager attention's form)."""
    keys = torch.arange(t)[None, :] <= torch.arange(t)[:, None]
    return torch.zeros(t, t).masked_fill(~keys, torch.finfo(torch.float32).min)[None, None]


def positions_of(prepared: Prepared, generated: int) -> torch.Tensor:
    """[1, S] or [3, 1, S]: the prefill positions, then each fed token at the largest prefill position + 1 + i
    (1d: S + i; M-RoPE: transformers' rope delta)."""
    prefill = torch.from_numpy(prepared.prefill_positions())
    after = torch.arange(generated) + int(prefill.max()) + 1
    if prefill.ndim == 1:
        return torch.cat([prefill, after])[None]
    return torch.cat([prefill, after[None].expand(prefill.shape[0], -1)], dim=1)[:, None, :]


@torch.no_grad()
def embed(family: Family, lazy: LazyModel, sequences: list[Forced]) -> dict[int, torch.Tensor]:
    """Each sequence's input embeddings (transformers' merge of the visual rows); returns transformers' visual
    embeddings per case (id of its Prepared) for the vision comparison."""
    decoder, lm_head = family.language_model(lazy.model)
    visual = {}
    with lazy.loaded(*lazy.outside(decoder, lm_head), decoder.embed_tokens):
        for seq in sequences:
            key = id(seq.prepared)
            if key not in visual:
                visual[key] = family.reference_visual(lazy.model, seq.prepared)
            fed = torch.tensor([seq.tokens[:-1]], dtype=torch.int64)
            prompt = family.reference_embeds(lazy.model, seq.prepared)
            seq.hidden = torch.cat([prompt, decoder.embed_tokens(fed)], dim=1)
            seq.positions = positions_of(seq.prepared, len(seq.tokens) - 1)
            seq.prompt_rows = len(seq.prepared.input_ids)
            seq.received = [[] for _ in seq.segments]
            seq.last = [[] for _ in seq.segments]
    return visual


def drop_unkept(seq: Forced) -> None:
    o, n = seq.prepared.visual_offset, seq.prepared.visual_length
    kept = set(seq.prune[1])
    rows = [i for i in range(seq.hidden.shape[1]) if not (o <= i < o + n) or (i - o) in kept]
    seq.prompt_rows -= n - len(kept)
    index = torch.tensor(rows)
    seq.hidden, seq.positions = seq.hidden[:, index], seq.positions[..., index]


class AttentionProbe:
    """Catches the eager attention probabilities a transformers attention module returns."""

    def __init__(self, attention: torch.nn.Module):
        self.probs = None
        self.handle = attention.register_forward_hook(self.keep)

    def keep(self, module, args, output):
        self.probs = output[1]

    def close(self):
        self.handle.remove()


@torch.no_grad()
def run_layers(family: Family, lazy: LazyModel, sequences: list[Forced], log=lambda line: None) -> None:
    decoder, lm_head = family.language_model(lazy.model)
    for index, layer in enumerate(decoder.layers):
        log(f"  transformers layer {index}")
        with lazy.loaded(layer):
            probe = AttentionProbe(layer.self_attn)
            for seq in sequences:
                if seq.prune is not None and index == seq.prune[0]:
                    drop_unkept(seq)
                t = seq.hidden.shape[1]
                out = layer(seq.hidden, attention_mask=causal_mask(t), position_ids=seq.positions,
                            past_key_values=None, use_cache=False, cache_position=torch.arange(t),
                            position_embeddings=decoder.rotary_emb(seq.hidden, seq.positions))
                seq.hidden = out[0] if isinstance(out, tuple) else out  # Qwen2.5-VL's layer returns (hidden,)
                record_attention(seq, index, probe.probs[0].float())
            probe.close()
    with lazy.loaded(decoder.norm, lm_head):
        for seq in sequences:
            rows = torch.arange(len(seq.tokens)) + seq.prompt_rows - 1
            seq.logits = list(lm_head(decoder.norm(seq.hidden[:, rows]))[0].float())
            seq.hidden = None


def record_attention(seq: Forced, layer: int, probs: torch.Tensor) -> None:
    """Per call (prefill, then each decode step): the attention each key receives from the weighted queries
    (prefill: the queries after the visual span; decode: its one query), summed over the segment's layers and all
    heads; and at the segment's last layer the last query's."""
    segment = next((i for i, (a, b) in enumerate(seq.segments) if a <= layer < b), None)
    if segment is None:
        return
    s = seq.prompt_rows
    start = seq.prepared.visual_offset + seq.prepared.visual_length
    # A decode call's one query is both its weighted queries and its last query.
    decode = [probs[:, s + c - 1, :s + c].sum(0) for c in range(1, len(seq.tokens))]
    calls = [probs[:, start:s, :s].sum(dim=(0, 1)), *decode]
    sums = seq.received[segment]
    seq.received[segment] = [c if not sums else sums[i] + c for i, c in enumerate(calls)]
    if layer == seq.segments[segment][1] - 1:
        seq.last[segment] = [probs[:, s - 1, :s].sum(0), *decode]


def visual_received(seq: Forced) -> np.ndarray:
    """SGP's ranking score: attention received by each visual token over all layers and calls."""
    o, n = seq.prepared.visual_offset, seq.prepared.visual_length
    return sum(c[o:o + n] for calls in seq.received for c in calls).numpy()
