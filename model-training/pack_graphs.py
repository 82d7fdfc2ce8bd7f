"""The exported graphs of a model pack, as torch modules with the pack's I/O contract (v2,
shared/schemas/model-pack.ts and model-packs/README.md):

- VisionGraph:  pixel_values [B,3,H,W] -> visual_embeds [B,N,d]   (shared encoder + this model's projector)
- EmbedGraph:   input_ids [B,T] -> inputs_embeds [B,T,d]
- SegmentGraph: hidden_states [B,T,d], position_ids [B,T], attention_mask [B,P+T] (1 = attend, with the causal
                order), query_weights [B,T], past_key_<l>/past_value_<l> [B,H,P,dh], and in the last segment
                logit_rows [R]
                -> hidden_out [B,T,d] (or logits [B,R,V] of the rows asked for, in the last segment),
                   present_key_<l>/present_value_<l> [B,H,P+T,dh],
                   attention_received [B,P+T]: attention each key receives, summed over the segment's layers
                              and heads and over the queries weighted by query_weights (what SGP aggregates),
                   attention_last [B,P+T]: the last query's attention at the segment's last layer, summed over
                              heads (what FastV reads).

VisionGraph and SegmentGraph run the training modules' own forwards: they are the
reference. What gets exported are LeanVisionGraph and LeanSegmentGraph, the same
arithmetic written for a small ONNX graph. onnxruntime pays a fixed cost per node
and these models are tiny, so a decode step's time was mostly the ~200 nodes that
tracing the training code records (shape look-ups for every reshape, rotary tables
and causal mask rebuilt in every layer) rather than its matmuls.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from stitch_vlm import GroundedProjector, NEIGHBOUR_STEPS


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

    def forward(self, hidden_states, position_ids, attention_mask, query_weights, *rest):
        past, rows = self.split_rest(rest)
        hidden = attention_mask == 0  # [B, keys]: DecoderLayer's key padding (-inf)
        return self.run_layers(hidden_states, past, query_weights, rows,
                               lambda layer, x, pk, pv: layer(x, position_ids, pk, pv, key_padding=hidden))

    def split_rest(self, rest):
        """(past tensors, logit_rows or None) from the inputs after query_weights."""
        n = 2 * len(self.layers)
        return rest[:n], (rest[n] if self.final else None)

    def run_layers(self, x, past, query_weights, rows, apply):
        """The segment's layers in order (apply(layer, x, past_k, past_v) -> x, k, v, probs),
        with the attention sums and the head on the last segment."""
        presents, attention, last = [], None, None
        for i, layer in enumerate(self.layers):
            x, k, v, probs = apply(layer, x, past[2 * i], past[2 * i + 1])
            presents += [k, v]
            summed = probs.sum(dim=1)  # over heads: [B,T,P+T]
            attention = summed if attention is None else attention + summed
            last = summed
        # The logits of the rows asked for: LayerNorm and head are per row, so gathering first gives the same numbers.
        out = self.lm_head(self.ln_f(x.index_select(1, rows))) if self.final else x
        received = (query_weights.unsqueeze(1) @ attention).squeeze(1)  # [B,P+T]
        return (out, *presents, received, last[:, -1])

    def input_names(self):
        names = ["hidden_states", "position_ids", "attention_mask", "query_weights"]
        for layer in range(self.first, self.end):
            names += [f"past_key_{layer}", f"past_value_{layer}"]
        return names + (["logit_rows"] if self.final else [])

    def output_names(self):
        names = ["logits" if self.final else "hidden_out"]
        for layer in range(self.first, self.end):
            names += [f"present_key_{layer}", f"present_value_{layer}"]
        return names + ["attention_received", "attention_last"]


class _ReshapeKeeping(torch.autograd.Function):
    """x.reshape(shape), where a 0 in shape keeps that dimension of x (ONNX Reshape's
    rule; torch's exporter wants a -1 beside it). It exports as ONE Reshape with a
    constant shape, where tracing x.reshape(b, t, ...) with b, t read from x.shape
    records Shape, Gather, Unsqueeze and Concat nodes for every reshape. So batch
    (0) and sequence (-1) stay dynamic."""

    @staticmethod
    def forward(ctx, x, shape):
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(shape)])

    @staticmethod
    def symbolic(g, x, shape):
        return g.op("Reshape", x, g.op("Constant", value_t=torch.tensor(shape, dtype=torch.int64)))


def reshape_keeping(x, *shape):
    return _ReshapeKeeping.apply(x, shape)


def rotary_inv_freq(dh, base=10000.0):
    """stitch_vlm.rotary's frequencies, each repeated for its (even, odd) pair of dims."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float32) / dh))
    return inv_freq.repeat_interleave(2)


def rotate_pairs(dh):
    """R with (x @ R)[2i] = -x[2i+1] and (x @ R)[2i+1] = x[2i]. Then x*cos + (x@R)*sin is
    stitch_vlm.rotary's (x1*cos - x2*sin, x1*sin + x2*cos) interleaved, with the same
    products and sums (x@R only copies and negates: every other term is an exact 0),
    so the same bits, in 4 nodes instead of rotary's slices, stack and flatten."""
    r = torch.zeros(dh, dh)
    for i in range(0, dh, 2):
        r[i + 1, i] = -1.0
        r[i, i + 1] = 1.0
    return r


class LeanSegmentGraph(SegmentGraph):
    """SegmentGraph's outputs from the same weights and arithmetic, written for export:
    the rotary cos/sin tables and the causal + attention_mask bias are built once per segment
    instead of in every layer, reshapes use constant shapes, and queries and keys
    are rotated together. Export only; training and the reference use DecoderLayer.forward."""

    def __init__(self, decoder, first, end):
        super().__init__(decoder, first, end)
        self.heads = decoder.heads
        dh = decoder.d // decoder.heads
        self.register_buffer("inv_freq", rotary_inv_freq(dh), persistent=False)
        self.register_buffer("rotate", rotate_pairs(dh), persistent=False)

    def forward(self, hidden_states, position_ids, attention_mask, query_weights, *rest):
        past, rows = self.split_rest(rest)
        x = hidden_states
        # Rotary tables at these positions, [B,1,T,dh] (broadcast over heads).
        angles = position_ids.to(torch.float32)[:, None, :, None] * self.inv_freq
        cos, sin = torch.cos(angles), torch.sin(angles)
        # One additive bias for every layer, [B,1,T,P+T]: -inf where the causal order hides a key (in cache-index
        # space, as DecoderLayer.forward: query i sees keys 0..p+i), float32's min where attention_mask is 0, else
        # 0, so a visible score is unchanged. DecoderLayer puts -inf on masked keys; the same probabilities
        # (exactly 0 there) except for a query whose keys are all masked, which gets a finite row instead of NaN.
        t, p = x.shape[1], past[0].shape[2]
        hide = torch.arange(p + t)[None, :] > (torch.arange(t) + p)[:, None]  # [T, P+T]
        masked = torch.where(attention_mask == 0, torch.tensor(torch.finfo(torch.float32).min), torch.tensor(0.0))
        bias = torch.where(hide, torch.tensor(float("-inf")), masked[:, None, None, :])
        return self.run_layers(x, past, query_weights, rows,
                               lambda layer, x, pk, pv: self.layer(layer, x, cos, sin, bias, pk, pv))

    def layer(self, layer, x, cos, sin, bias, past_k, past_v):
        """DecoderLayer.forward with the segment's tables."""
        h = self.heads
        d = layer.out.in_features
        dh = d // h
        # [B,T,3d] -> [B,3H,T,dh]: query heads, then key heads, then value heads.
        qkv = reshape_keeping(layer.qkv(layer.ln1(x)), 0, -1, 3 * h, dh).transpose(1, 2)
        qk, v = qkv.split([2 * h, h], dim=1)
        q, k = (qk * cos + (qk @ self.rotate) * sin).split([h, h], dim=1)
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        scores = scores + bias
        probs = torch.softmax(scores, dim=-1)
        y = reshape_keeping((probs @ v).transpose(1, 2), 0, -1, d)
        x = x + layer.out(y)
        x = x + layer.mlp(layer.ln2(x))
        return x, k, v, probs


class LeanVisionGraph(VisionGraph):
    """VisionGraph's visual_embeds with the same arithmetic, written for export:
    patchify reshapes with constant shapes (the image size is fixed by the pack's
    manifest), and the projector's neighbour shifts are constant-index gathers. Export only."""

    def __init__(self, encoder, decoder, height, width):
        super().__init__(encoder, decoder)
        self.height, self.width = height, width
        project = decoder.project
        if isinstance(project, GroundedProjector) and project.neighbours is not None:
            self.neighbour_index = list(neighbour_index(project.grid))  # constants in the graph

    def forward(self, pixel_values):
        enc = self.encoder  # VisionEncoder.forward, patchified at the pack's fixed image size
        vis = enc.norm(enc.mlp(enc.patchify(pixel_values, size=(self.height, self.width))))
        project = self.decoder.project
        if not isinstance(project, GroundedProjector) or project.neighbours is None:
            return self.decoder.visual_tokens(vis)  # no shape-dependent steps to rewrite
        return self.grounded_tokens(project, vis)

    def grounded_tokens(self, project, vis):
        """GroundedProjector.forward (with neighbours), term for term and in its order of sums."""
        x, words = project.per_cell(vis, self.decoder.embed)
        # neighbour_of(words, ...) for every step at once: one zero token appended,
        # then each cell's neighbour (or that zero past the grid's edge) by a constant index.
        padded = F.pad(words, (0, 0, 0, 1))
        for mix, index in zip(project.neighbours, self.neighbour_index):
            x = x + mix(padded.index_select(-2, index))
        return x


def neighbour_index(grid):
    """[steps, N]: for each NEIGHBOUR_STEPS step, the row-major index of each cell's
    neighbour, or N (the appended zero token) where it falls off the grid."""
    n = grid * grid
    rows = []
    for dr, dc in NEIGHBOUR_STEPS:
        row = []
        for cell in range(n):
            r, c = cell // grid + dr, cell % grid + dc
            row.append(r * grid + c if 0 <= r < grid and 0 <= c < grid else n)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.int64)
