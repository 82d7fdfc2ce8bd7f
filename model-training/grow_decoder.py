"""Grows a trained decoder to more layers without changing what it computes.

Each original layer i becomes layer i * factor, and the layers between are new:
freshly initialised attention and MLP inputs (as build_decoder would), but zero
output projections, so each new layer starts as the identity on the residual
stream (the zero-init residual trick of function-preserving growth, Net2Net's
"deeper" operator). The grown model answers exactly as the original until
tuning gives the new layers work. Layer 0 stays layer 0, so pruning at layer 1
still prunes after one full layer.

    /usr/bin/python3 model-training/grow_decoder.py --from RUN/large-tune.ckpt --factor 2 --out RUN2/large.ckpt

The output is a base checkpoint for the next stage, e.g.
    train_pair.py --run RUN2 --stages large-tune --large-size 256,8,4
"""
import argparse
import math
import os

import torch

from stitch_vlm import load_checkpoint

# Per-layer parameters whose output feeds the residual stream: zero means identity.
RESIDUAL_OUTPUTS = ("out.weight", "out.bias", "mlp.2.weight", "mlp.2.bias")


def new_layer(template, d, seed):
    """A fresh layer's tensors (same shapes as template): linear weights ~ N(0, 1/in),
    the key projection tied to the query one (as tied_qk builds), LayerNorms at 1/0,
    residual outputs at zero."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in template.items():
        if name in RESIDUAL_OUTPUTS or name.endswith(".bias"):
            out[name] = torch.zeros_like(t)
        elif name.startswith("ln"):
            out[name] = torch.ones_like(t)
        else:
            out[name] = torch.randn(t.shape, generator=gen) / math.sqrt(t.shape[1])
    out["qkv.weight"][d : 2 * d] = out["qkv.weight"][:d]
    return out


def grow(state, factor, seed=0):
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.")})
    grown = {k: v for k, v in state.items() if not k.startswith("layers.")}
    d = state["layers.0.qkv.weight"].shape[1]
    for i in layers:
        own = {k[len(f"layers.{i}.") :]: v for k, v in state.items() if k.startswith(f"layers.{i}.")}
        grown.update({f"layers.{i * factor}.{k}": v for k, v in own.items()})
        for j in range(1, factor):
            fresh = new_layer(own, d, seed * 1000 + i * factor + j)
            grown.update({f"layers.{i * factor + j}.{k}": v for k, v in fresh.items()})
    return grown, len(layers) * factor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="source", required=True)
    ap.add_argument("--factor", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ck = load_checkpoint(args.source)
    state, layers = grow(ck["model"], args.factor, args.seed)
    size = dict(ck["size"], layers=layers)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(dict(model=state, size=size, arch=ck.get("arch"), grown_from=args.source, step=ck.get("step")), args.out)
    print(f"{args.source}: {len(ck['model'])} tensors, {ck['size']['layers']} layers -> {layers} layers in {args.out}")


if __name__ == "__main__":
    main()
