"""The Stitch VLM family: one patch-local vision encoder shared by two causal decoders.

Every visual token is the encoding of exactly one grid cell (the encoder mixes no
information across patches), so visual token i means the same image region in
both models, which is what small-guided pruning needs. The large model's
projector also adds what the four cells beside cell i hold, through its own
maps: token i is still centred on cell i.

Positions are rotary (RoPE) and passed explicitly as position ids, so a pruned
KV cache keeps each token's original position.
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# Hidden width of the encoder's per-patch MLP; checkpoints that do not record one are this wide.
ENCODER_HIDDEN = 256


def load_checkpoint(path):
    """A training checkpoint: weights with optimizer state, history and settings. These are
    our own files, so not weights-only (torch >= 2.6 would refuse anything but tensors)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def encoder_hidden_of(checkpoint):
    return checkpoint.get("hidden", ENCODER_HIDDEN)


class VisionEncoder(nn.Module):
    """Patchify, per-patch MLP; heads for the dense per-cell loss (pre-training only)."""

    def __init__(self, patch_px, d_vis, hidden=ENCODER_HIDDEN):
        super().__init__()
        self.patch_px = patch_px
        self.mlp = nn.Sequential(
            nn.Linear(3 * patch_px * patch_px, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, d_vis),
        )
        self.norm = nn.LayerNorm(d_vis)
        self.shape_head = nn.Linear(d_vis, 5)
        self.colour_head = nn.Linear(d_vis, 6)
        self.digit_head = nn.Linear(d_vis, 11)

    def patchify(self, pixels, size=None):
        """pixels: [B, 3, H, W] -> [B, N, 3*p*p], patches in row-major grid order.
        size=(H, W) (export): every size but the batch is a constant, so an exported
        graph holds one Reshape each instead of shape look-ups."""
        b, c, h, w = pixels.shape if size is None else (-1, 3, *size)
        p = self.patch_px
        x = pixels.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)

    def forward(self, pixels):
        return self.norm(self.mlp(self.patchify(pixels)))

    def heads_list(self):
        return [self.shape_head, self.colour_head, self.digit_head]

    def cell_logits(self, features):
        return tuple(head(features) for head in self.heads_list())


def rotary(x, position_ids, base=10000.0):
    """Applies RoPE to x [B, H, T, dh] at the given position ids [B, T]."""
    dh = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float32, device=x.device) / dh))
    angles = position_ids.to(torch.float32).unsqueeze(-1) * inv_freq  # [B, T, dh/2]
    cos = torch.cos(angles).unsqueeze(1)
    sin = torch.sin(angles).unsqueeze(1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class DecoderLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, position_ids, past_k=None, past_v=None, key_padding=None):
        """x [B,T,d]; past_k/v [B,H,P,dh]. Returns x, k, v (with past), attention probs [B,H,T,P+T]."""
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q = rotary(q.reshape(b, t, h, d // h).transpose(1, 2), position_ids)
        k = rotary(k.reshape(b, t, h, d // h).transpose(1, 2), position_ids)
        v = v.reshape(b, t, h, d // h).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        p = k.shape[2] - t
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        # Causal in cache-index space: query i sees keys 0..p+i. Pruning keeps the
        # order of the kept tokens, so this stays right on a pruned cache.
        qi = torch.arange(t, device=x.device).unsqueeze(1) + p
        kj = torch.arange(p + t, device=x.device).unsqueeze(0)
        scores = scores.masked_fill((kj > qi).unsqueeze(0).unsqueeze(0), float("-inf"))
        if key_padding is not None:  # [B, keys], or [B, queries, keys]
            hide = key_padding[:, None, None, :] if key_padding.dim() == 2 else key_padding[:, None]
            scores = scores.masked_fill(hide, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        y = (probs @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.out(y)
        x = x + self.mlp(self.ln2(x))
        return x, k, v, probs


def sinusoids(n, d, offset):
    """[n, d]: sin/cos of position x frequency in dims offset..offset+d/2, zero elsewhere."""
    out = torch.zeros(n, d)
    half = d // 2
    freqs = math.pi / 8 * (0.5 ** (torch.arange(half // 2, dtype=torch.float32) / max(1, half // 2 - 1) * 3))
    angles = torch.arange(n, dtype=torch.float32)[:, None] * freqs[None, :]
    out[:, offset : offset + half : 2] = torch.sin(angles)
    out[:, offset + 1 : offset + half : 2] = torch.cos(angles)
    return out * math.sqrt(2)


class GroundedProjector(nn.Module):
    """Visual token = MLP(cell features) + the word embeddings of what the cell holds.

    The encoder's (frozen) per-cell heads say which shape, colour and digit a cell
    shows; their probabilities weight the decoder's own embeddings of those words,
    so a cell holding a red square starts out as "red" + "square" + its digit in
    the language model's space, as projectors of real VLMs learn to map regions
    near the words that name them. Empty cells get only the MLP part.

    Each token also gets a learned row + column embedding (a ViT's absolute
    position embedding). RoPE alone marks positions in queries and keys only, so
    what one layer reads from a cell would not say WHERE the cell is; "the shape
    left of the red square" needs that in the next layer.
    """

    def __init__(self, d_vis, d, attribute_heads, attribute_words, grid=8, fixed_positions=False, neighbours=False):
        super().__init__()
        self.grid = grid
        # The large model's projector also mixes in what its four neighbours hold
        # (a cross-shaped convolution over the word part, as convolutional
        # abstractors do): token i still means cell i, and "the shape left of the
        # red square" becomes a lookup of the red square's left slot. Zero at the
        # start, so a trained per-cell projector is where tuning begins.
        self.neighbours = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in NEIGHBOUR_STEPS) if neighbours else None
        self.mlp = nn.Sequential(nn.Linear(d_vis, d), nn.GELU(), nn.Linear(d, d))
        if fixed_positions:
            # 2D sinusoids, rows in the first half of the width and columns in the
            # second: a one-cell shift is then a fixed rotation, a linear map a query can learn.
            self.register_buffer("row", sinusoids(grid, d, 0), persistent=False)
            self.register_buffer("col", sinusoids(grid, d, d // 2), persistent=False)
        else:
            self.row = nn.Parameter(torch.randn(grid, d) * 0.5)
            self.col = nn.Parameter(torch.randn(grid, d) * 0.5)
        self.heads = nn.ModuleList(copy.deepcopy(h) for h in attribute_heads)
        for p in self.heads.parameters():
            p.requires_grad_(False)
        for i, ids in enumerate(attribute_words):
            self.register_buffer(f"words_{i}", torch.tensor(ids, dtype=torch.long), persistent=False)

    def per_cell(self, vis, embed):
        """Each token from its own cell alone: (MLP + position + words, the words part)."""
        cells = (self.row[:, None, :] + self.col[None, :, :]).reshape(self.grid * self.grid, -1)
        words = 0
        for i, head in enumerate(self.heads):
            probs = torch.softmax(head(vis), dim=-1)[..., 1:]  # class 0 = empty cell
            words = words + probs @ embed.weight[getattr(self, f"words_{i}")]
        return self.mlp(vis) + cells + words, words

    def forward(self, vis, embed):
        x, words = self.per_cell(vis, embed)
        if self.neighbours is not None:
            for mix, step in zip(self.neighbours, NEIGHBOUR_STEPS):
                x = x + mix(neighbour_of(words, self.grid, *step))
        return x


# Left, right, above, below as (row step, column step): scene-generator/vocabulary.ts DIRECTIONS.
NEIGHBOUR_STEPS = ((0, -1), (0, 1), (-1, 0), (1, 0))


def neighbour_of(tokens, grid, dr, dc):
    """[..., N, d] in row-major cell order -> for each cell, the token of the cell
    (dr, dc) away, zeros past the grid's edge."""
    g = tokens.reshape(*tokens.shape[:-2], grid, grid, tokens.shape[-1])
    if dc:
        zeros = torch.zeros_like(g[..., :, :1, :])
        g = torch.cat([zeros, g[..., :, :-1, :]], dim=-2) if dc < 0 else torch.cat([g[..., :, 1:, :], zeros], dim=-2)
    if dr:
        zeros = torch.zeros_like(g[..., :1, :, :])
        g = torch.cat([zeros, g[..., :-1, :, :]], dim=-3) if dr < 0 else torch.cat([g[..., 1:, :, :], zeros], dim=-3)
    return g.reshape(tokens.shape)


class Decoder(nn.Module):
    def __init__(self, vocab, d, layers, heads, d_vis, grounding=None, tied_qk=False, fixed_positions=False, neighbours=False,
                 depth_scaled_init=False):
        """grounding: (attribute heads, word ids per attribute) for a GroundedProjector;
        tied_qk: start each layer's key projection equal to its query projection,
        so attention begins as content similarity instead of noise;
        depth_scaled_init: residual output projections start 1/sqrt(2 * layers) smaller
        (GPT-2's init), so a deep stack does not start with a residual stream that
        grows with depth."""
        super().__init__()
        self.d = d
        self.heads = heads
        if grounding is None:
            self.project = nn.Sequential(nn.Linear(d_vis, d), nn.GELU(), nn.Linear(d, d))
        else:
            self.project = GroundedProjector(d_vis, d, *grounding, fixed_positions=fixed_positions, neighbours=neighbours)
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([DecoderLayer(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, std=1.0 / math.sqrt(mod.in_features))
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        nn.init.normal_(self.embed.weight, std=1.0)
        if grounding is not None:  # the init loop above overwrote the copied heads
            for head, src in zip(self.project.heads, grounding[0]):
                head.load_state_dict(src.state_dict())
        if neighbours:
            for mix in self.project.neighbours:
                nn.init.zeros_(mix.weight)
        if tied_qk:
            with torch.no_grad():
                for layer in self.layers:
                    layer.qkv.weight[d : 2 * d] = layer.qkv.weight[:d]
        if depth_scaled_init:
            with torch.no_grad():
                for layer in self.layers:
                    layer.out.weight.mul_(1 / math.sqrt(2 * layers))
                    layer.mlp[2].weight.mul_(1 / math.sqrt(2 * layers))

    def visual_tokens(self, vis):
        if isinstance(self.project, GroundedProjector):
            return self.project(vis, self.embed)
        return self.project(vis)

    def forward(self, vis, ids, key_padding=None, return_attention=False, prune=None):
        """Training forward: vis [B,N,d_vis] then text ids [B,T]; returns logits [B,N+T,V]
        (and each layer's attention probabilities [B,H,N+T,N+T] when asked).
        prune: (from_layer [B], keep [B,N+T]): from that layer on, a row's dropped
        tokens are hidden from every query, as the engine's pruned KV cache hides them."""
        x = torch.cat([self.visual_tokens(vis), self.embed(ids)], dim=1)
        b, n, _ = x.shape
        pos = torch.arange(n, device=x.device).unsqueeze(0).expand(b, n)
        attention = []
        for i, layer in enumerate(self.layers):
            hidden = key_padding
            if prune is not None:
                start, keep = (t.to(x.device) for t in prune)
                dropped = ~keep & (start <= i)[:, None]
                hidden = dropped if hidden is None else hidden | dropped
                # A dropped token still sees itself (else its row would be all -inf:
                # NaN that masked attention to it would still carry, as 0 * NaN).
                hidden = hidden[:, None, :] & ~torch.eye(n, dtype=torch.bool, device=x.device)[None]
            x, _, _, probs = layer(x, pos, key_padding=hidden)
            attention.append(probs)
        logits = self.lm_head(self.ln_f(x))
        return (logits, attention) if return_attention else logits


ATTRIBUTE_WORDS = (
    ["circle", "square", "triangle", "diamond"],  # shape classes 1..4 (scene-generator/vocabulary.ts order)
    ["red", "green", "blue", "yellow", "purple"],  # colour classes 1..5
    [str(i) for i in range(10)],  # digit classes 1..10
)


def build_decoder(vocab, size, d_vis, encoder=None, grounded=False, tied_qk=False, fixed_positions=False, neighbours=False,
                  depth_scaled_init=False):
    """The decoder of one size; grounded ones read the encoder's attribute heads."""
    grounding = None
    if grounded:
        token = {w: i for i, w in enumerate(vocab)}
        words = [[token[w] for w in group] for group in ATTRIBUTE_WORDS]
        grounding = (list(encoder.heads_list()), words)
    return Decoder(len(vocab), d_vis=d_vis, grounding=grounding, tied_qk=tied_qk, fixed_positions=fixed_positions,
                   neighbours=neighbours, depth_scaled_init=depth_scaled_init, **size)
