"""A torch reference of the engine's generation loop over the pack graphs (same
segments, same KV-cache handling, same pruning rule). The exporter uses it to
record the conformance fixture; the TypeScript engine must reproduce it."""
import torch

from scene_data import ANSWER, EOS, QUESTION


class ReferencePack:
    def __init__(self, encoder, decoder, splits):
        from pack_graphs import EmbedGraph, SegmentGraph, VisionGraph
        self.vision = VisionGraph(encoder, decoder).eval()
        self.embed = EmbedGraph(decoder).eval()
        bounds = [0] + list(splits) + [len(decoder.layers)]
        self.segments = [SegmentGraph(decoder, a, b).eval() for a, b in zip(bounds[:-1], bounds[1:])]
        self.heads = decoder.heads
        self.d = decoder.d

    def empty_past(self, seg):
        dh = self.d // self.heads
        e = torch.zeros(1, self.heads, 0, dh)
        return [e] * (2 * len(seg.layers))


@torch.no_grad()
def generate(pack, pixels, question_ids, max_tokens=4, keep=None, prune_at=None):
    """Greedy decode. keep: indices of visual tokens kept from segment boundary `prune_at`
    (0 = before the first layer). Returns tokens, per-step logits, and the attention that
    each visual token received from the text queries (prefill) and generated tokens, summed
    over all layers and heads (the SGP ranking)."""
    vis = pack.vision(pixels)  # [1,N,d]
    n = vis.shape[1]
    prompt = [QUESTION] + list(question_ids) + [ANSWER]
    x = torch.cat([vis, pack.embed(torch.tensor([prompt]))], dim=1)
    pos = torch.arange(x.shape[1]).unsqueeze(0)
    cols = torch.arange(x.shape[1])  # original index of each row of x
    pasts, seg_cols, received = [], [], torch.zeros(n)
    layer_start = 0
    for seg in pack.segments:
        if keep is not None and layer_start == prune_at:
            # Layers before K keep their full KV caches; from K on only kept visual tokens remain.
            sel = torch.cat([torch.tensor(sorted(keep)), torch.arange(n, x.shape[1])])
            x, pos, cols = x[:, sel], pos[:, sel], cols[sel]
        t = x.shape[1]
        # Text queries count for the SGP ranking; only the last row's logits are needed.
        out = seg(x, pos, torch.ones(1, t, dtype=torch.long), (cols >= n).float()[None], *pack.empty_past(seg),
                  *([torch.tensor([t - 1])] if seg.final else []))
        x = out[0]
        pasts.append(list(out[1:-2]))
        seg_cols.append(cols)
        received[cols[cols < n]] += out[-2][0, : len(cols)][cols < n]  # [P+T] with P = 0
        layer_start += len(seg.layers)
    logits = x[0, -1]
    tokens, step_logits = [], []
    next_pos = int(pos[0, -1]) + 1
    for _ in range(max_tokens):
        tok = int(logits.argmax())
        tokens.append(tok)
        step_logits.append(logits)
        if tok == EOS or len(tokens) == max_tokens:
            break
        h = pack.embed(torch.tensor([[tok]]))
        p = torch.tensor([[next_pos]])
        next_pos += 1
        for si, seg in enumerate(pack.segments):
            keys = pasts[si][0].shape[2] + 1
            out = seg(h, p, torch.ones(1, keys, dtype=torch.long), torch.ones(1, 1), *pasts[si],
                      *([torch.tensor([0])] if seg.final else []))
            h = out[0]
            pasts[si] = list(out[1:-2])
            c = seg_cols[si]
            att = out[-2][0, : len(c)]
            received[c[c < n]] += att[c < n]
        logits = h[0, -1]
    return tokens, step_logits, received
