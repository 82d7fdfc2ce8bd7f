"""The optional decode_steps graph: K greedy decode steps inside ONE graph run, so that on a GPU the KV cache crosses
to the host once per K tokens instead of twice per token (onnxruntime-node returns every output to the host).

It runs every decoder layer (each layer's past K/V its own input with its own length: after a pruned run the layers
from the prune layer on hold fewer columns), the final norm and lm_head, K times: embed the token, logits, argmax,
the chosen token's softmax probability (SEE's confidence), fed back as the next step's token. It reuses
decoder.SegmentGraph's layer, rotary and head (one decoder, no copy).

Outputs: token_ids [K], probabilities [K], present_key_l / present_value_l (past + K columns) per layer, and per
segment (named by its first layer) attention_received_<first> [K, P_s + K]: row i is the attention each key receives
from decode query i (the token fed at step i), summed over the segment's layers and heads, exactly what the segment
graph reports for that step (zero-padded on the right to P_s + K). Rows, not one sum: the host counts only the
queries step-by-step decoding would have fed (a token after a stop or past max_tokens is never fed back)."""

import hashlib

import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn import functional as F

from .decoder import SegmentGraph, rope_positions
from .family import Unsupported

OUTPUT_PROBABILITIES = "probabilities"


def check_decode_steps(cfg, steps: int) -> None:
    if steps < 2:
        raise Unsupported(f"--decode-steps {steps}: at least 2 (1 is the step-by-step segment graphs)")
    if rope_positions(cfg)[0] != "1d":
        raise Unsupported("--decode-steps is not supported for M-RoPE decoders (Qwen2-VL / Qwen2.5-VL): their decode "
                          "positions need the rope delta on all three rows; export without it")


class DecodeStepsGraph(nn.Module):
    def __init__(self, cfg, decoder, lm_head, segments: list[tuple[int, int]], steps: int):
        super().__init__()
        check_decode_steps(cfg, steps)
        self.steps, self.segments, self.layer_count = steps, segments, cfg.num_hidden_layers
        self.embed_tokens = decoder.embed_tokens
        self.body = SegmentGraph(cfg, decoder, lm_head, 0, cfg.num_hidden_layers)

    def input_names(self) -> list[str]:
        return ["token_id", "position", *[f"past_{kind}_{l}" for l in range(self.layer_count)
                                          for kind in ("key", "value")]]

    def output_names(self) -> list[str]:
        return ["token_ids", OUTPUT_PROBABILITIES,
                *[f"present_{kind}_{l}" for l in range(self.layer_count) for kind in ("key", "value")],
                *[f"attention_received_{first}" for first, _ in self.segments]]

    def dynamic_axes(self) -> dict:
        axes = {}
        for l in range(self.layer_count):
            for kind in ("key", "value"):
                axes[f"past_{kind}_{l}"] = {2: f"P{l}"}
                axes[f"present_{kind}_{l}"] = {2: f"PK{l}"}
        for first, _ in self.segments:
            axes[f"attention_received_{first}"] = {1: f"PK{first}"}
        return axes

    def sample_inputs(self) -> tuple:
        """Each segment's past of a different length (a pruned run's are), so that no length is frozen."""
        b = self.body
        past = [torch.randn(1, b.kv_heads, 2 + 3 * s, b.head_dim)
                for s, (first, end) in enumerate(self.segments) for _ in range(first, end) for _ in range(2)]
        return (torch.tensor([5]), torch.tensor([7]), *past)

    def forward(self, token_id, position, *past):
        b = self.body
        past = list(past)
        segment_of = [i for i, (first, end) in enumerate(self.segments) for _ in range(first, end)]
        rows: list[list[torch.Tensor]] = [[] for _ in self.segments]
        tokens, probabilities = [], []
        token = token_id
        for step in range(self.steps):
            x = self.embed_tokens(token)[None]  # [1, 1, hidden]
            cos, sin = b.rotary((position + step).view(1, 1))
            received = [None] * len(self.segments)
            for l, layer in enumerate(b.layers):
                # One query that sees every key (the engine's attention_mask is all ones, the query is the newest).
                allowed = torch.ones_like(past[2 * l][0, 0, :, 0], dtype=torch.bool)
                allowed = torch.cat([allowed, torch.ones(1, dtype=torch.bool)])[None]
                x, k, v, probs = b.layer(layer, x, cos, sin, allowed, past[2 * l], past[2 * l + 1])
                past[2 * l], past[2 * l + 1] = k, v
                s = segment_of[l]
                summed = probs.sum(dim=(1, 2, 3))  # [1, P_s + step + 1]: both head axes and the one query
                received[s] = summed if received[s] is None else received[s] + summed
            for s, r in enumerate(received):
                rows[s].append(F.pad(r, (0, self.steps - 1 - step)))
            logits = b.head(b.norm(x))[0, 0].to(torch.float32)  # [vocab]
            token = torch.argmax(logits, dim=-1, keepdim=True)  # first index of the largest, as the engine's argmax
            probabilities.append(torch.softmax(logits, dim=-1, dtype=torch.float32).gather(0, token))
            tokens.append(token)
        attention = [torch.cat(r, dim=0) for r in rows]  # [K, P_s + K]
        return (torch.cat(tokens), torch.cat(probabilities), *past, *attention)


def untie(model: onnx.ModelProto) -> onnx.ModelProto:
    """Each use of a shared weight (the K unrolled steps use every layer's weights K times) given its own copy:
    onnxruntime's quantizers rewrite only the first MatMul that reads a weight and leave the others in float32.
    `dedupe` merges the copies back once the weight type is applied."""
    inits = {t.name: t for t in model.graph.initializer if len(t.dims) >= 2}
    # torch's exporter reads a weight used again through an Identity of the first use: read the weight itself.
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits}
    outputs = {o.name for o in model.graph.output}
    keep = [n for n in model.graph.node if not (n.op_type == "Identity" and n.input[0] in inits
                                                 and n.output[0] not in outputs)]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    for node in model.graph.node:
        node.input[:] = [alias.get(x, x) for x in node.input]
    seen: dict[str, int] = {}
    copies = []
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name not in inits:
                continue
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__use{seen[name]}"
                copies.append(copy)
                node.input[i] = copy.name
    model.graph.initializer.extend(copies)
    return model


def dedupe(model: onnx.ModelProto) -> onnx.ModelProto:
    """Initializers of equal type, shape and bytes merged into one (the first), their readers renamed."""
    canonical: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    for t in model.graph.initializer:
        key = (t.data_type, tuple(t.dims), hashlib.sha256(numpy_helper.to_array(t).tobytes()).hexdigest())
        rename[t.name] = canonical.setdefault(key, t.name)
    for node in model.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
    for i in reversed(range(len(model.graph.initializer))):
        if rename[model.graph.initializer[i].name] != model.graph.initializer[i].name:
            del model.graph.initializer[i]
    return model
