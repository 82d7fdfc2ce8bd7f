"""The exported graphs of a model pack, as torch modules with the pack's I/O contract.

- VisionGraph:  pixel_values [B,3,H,W] -> visual_embeds [B,N,d]   (shared encoder + this model's projector)
- EmbedGraph:   input_ids [B,T] -> inputs_embeds [B,T,d]
- SegmentGraph: hidden_states [B,T,d], position_ids [B,T], past_key_<l>/past_value_<l> [B,H,P,dh]
                -> hidden_out [B,T,d] (or logits [B,T,V] for the last segment),
                   present_key_<l>/present_value_<l> [B,H,P+T,dh],
                   attention [B,T,P+T]: attention each key receives from each query, summed over
                              the segment's layers and heads (what SGP aggregates),
                   attention_last [B,T,P+T]: the same at the segment's last layer only (what FastV reads).
"""
import torch
import torch.nn as nn


class VisionGraph(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, pixel_values):
        return self.decoder.visual_tokens(self.encoder(pixel_values))


class EmbedGraph(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.embed = decoder.embed

    def forward(self, input_ids):
        return self.embed(input_ids)


class SegmentGraph(nn.Module):
    def __init__(self, decoder, first, end):
        super().__init__()
        self.first, self.end = first, end
        self.layers = nn.ModuleList(decoder.layers[first:end])
        self.final = end == len(decoder.layers)
        if self.final:
            self.ln_f = decoder.ln_f
            self.lm_head = decoder.lm_head

    def forward(self, hidden_states, position_ids, *past):
        x = hidden_states
        presents, attention, last = [], None, None
        for i, layer in enumerate(self.layers):
            x, k, v, probs = layer(x, position_ids, past[2 * i], past[2 * i + 1])
            presents += [k, v]
            summed = probs.sum(dim=1)  # over heads: [B,T,P+T]
            attention = summed if attention is None else attention + summed
            last = summed
        out = self.lm_head(self.ln_f(x)) if self.final else x
        return (out, *presents, attention, last)

    def input_names(self):
        names = ["hidden_states", "position_ids"]
        for layer in range(self.first, self.end):
            names += [f"past_key_{layer}", f"past_value_{layer}"]
        return names

    def output_names(self):
        names = ["logits" if self.final else "hidden_out"]
        for layer in range(self.first, self.end):
            names += [f"present_key_{layer}", f"present_value_{layer}"]
        return names + ["attention", "attention_last"]
