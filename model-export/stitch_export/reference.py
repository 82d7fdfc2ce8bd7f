"""The transformers references (eager attention): greedy decoding through the model's own forward with
output_attentions, and a pruned greedy run looping over transformers' own decoder layers."""

from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .family import Family, Prepared


@dataclass
class Reference:
    tokens: list[int]
    logits: list[torch.Tensor]  # [vocab] per generated token (the row that chose it)
    attentions: list[tuple[torch.Tensor, ...]]  # per call: per layer [1, heads, T, P+T]


@torch.no_grad()
def greedy(family: Family, model, prepared: Prepared, max_tokens: int, stop_ids) -> Reference:
    out = model(**family.reference_inputs(model, prepared), use_cache=True, output_attentions=True)
    tokens, logits, attentions = [], [], []
    while True:
        row = out.logits[0, -1].float()
        tokens.append(int(row.argmax()))
        logits.append(row)
        attentions.append(out.attentions)
        if tokens[-1] in stop_ids or len(tokens) == max_tokens:
            return Reference(tokens, logits, attentions)
        # cache_position as generate() passes it: Qwen2(.5)-VL adds its rope delta to it (without it, transformers
        # puts a decode step at M-RoPE position 0).
        past = out.past_key_values.get_seq_length()
        out = model(input_ids=torch.tensor([[tokens[-1]]]), past_key_values=out.past_key_values, use_cache=True,
                    output_attentions=True, cache_position=torch.tensor([past]))


def causal_mask(t: int, p: int) -> torch.Tensor:
    """Additive [1, 1, T, P+T] mask: query i sees every past key and current keys j ≤ i (eager attention's form)."""
    keys = torch.arange(p + t)[None, :] <= (torch.arange(t) + p)[:, None]
    return torch.zeros(t, p + t).masked_fill(~keys, torch.finfo(torch.float32).min)[None, None]


@torch.no_grad()
def pruned_greedy(family: Family, model, prepared: Prepared, layer_k: int, keep: list[int], max_tokens: int,
                  stop_ids) -> Reference:
    """Visual rows not in `keep` are dropped from layer K on (their hidden states, hence their KV, never reach
    layers ≥ K); positions stay the original ones (the family's prefill positions: 1d or M-RoPE's 3 rows; decode
    steps continue at the largest prefill position + 1, which is transformers' rope delta for M-RoPE)."""
    decoder, lm_head = family.language_model(model)
    x = family.reference_embeds(model, prepared)
    s, o, n = x.shape[1], prepared.visual_offset, prepared.visual_length
    kept = set(keep)
    rows = torch.tensor([i for i in range(s) if not (o <= i < o + n) or (i - o) in kept])
    prefill = torch.from_numpy(prepared.prefill_positions())
    next_position = int(prefill.max()) + 1
    positions = prefill[None] if prefill.ndim == 1 else prefill[:, None, :]  # [1, S] or [3, 1, S]
    cache = DynamicCache()
    tokens, logits = [], []
    while True:
        h, pos = x, positions
        for index, layer in enumerate(decoder.layers):
            if index == layer_k and rows is not None:
                h, pos = h[:, rows], pos[..., rows]
            t, p = h.shape[1], cache.get_seq_length(index)
            h = layer(h, attention_mask=causal_mask(t, p), position_ids=pos, past_key_values=cache, use_cache=True,
                      cache_position=torch.arange(p, p + t), position_embeddings=decoder.rotary_emb(h, pos))
            h = h[0] if isinstance(h, tuple) else h  # Qwen2.5-VL's decoder layer returns (hidden,)
        row = lm_head(decoder.norm(h[:, -1:]))[0, 0].float()
        tokens.append(int(row.argmax()))
        logits.append(row)
        if tokens[-1] in stop_ids or len(tokens) == max_tokens:
            return Reference(tokens, logits, [])
        x = decoder.embed_tokens(torch.tensor([[tokens[-1]]]))
        positions = torch.full(positions.shape[:-1] + (1,), next_position + len(tokens) - 1)
        rows = None


def received(ref: Reference, prepared: Prepared, layers: range) -> list[torch.Tensor]:
    """Per call, the attention each key receives over `layers` and all heads, from the weighted queries (prefill:
    the queries after the visual span; decode: the one query)."""
    start = prepared.visual_offset + prepared.visual_length
    sums = []
    for call, attentions in enumerate(ref.attentions):
        total = 0
        for layer in layers:
            a = attentions[layer][0].float()  # [heads, T, P+T]
            total = total + (a[:, start:] if call == 0 else a).sum(dim=(0, 1))
        sums.append(total)
    return sums
