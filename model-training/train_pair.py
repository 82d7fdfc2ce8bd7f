"""Trains the embedded Stitch pair: a shared patch encoder (dense per-cell loss),
then the small decoder, then the large one. One model at a time; every stage
checkpoints and resumes.

    /usr/bin/python3 model-training/train_pair.py --run training-runs/pair [--device cuda]
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from scene_data import PAD, SceneData, multi_turn_batch, prompt_ids, pad_rows
from stitch_vlm import Decoder, VisionEncoder

SIZES = {
    "small": dict(d=64, layers=2, heads=4),
    "large": dict(d=128, layers=4, heads=4),
}
D_VIS = 64


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="training-runs/data")
    ap.add_argument("--run", default="training-runs/pair")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder-steps", type=int, default=1200)
    ap.add_argument("--small-steps", type=int, default=3000)
    ap.add_argument("--large-steps", type=int, default=3500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--small-lr", type=float, default=None, help="learning rate of the small model (default --lr)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--stages", default="encoder,small,large")
    return ap.parse_args()


def lr_at(step, total, base):
    """Warm-up, then constant, then a short linear decay at the end (a rate that
    decays early is already low when the plateau breaks)."""
    if step < 100:
        return base * (step + 1) / 100
    decay_from = int(total * 0.8)
    if step < decay_from:
        return base
    return base * max(0.05, 1 - (step - decay_from) / max(1, total - decay_from))


def save(path, **state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_encoder(args, train, held, device):
    path = os.path.join(args.run, "encoder.ckpt")
    enc = VisionEncoder(train.meta["cellPx"], D_VIS).to(device)
    opt = torch.optim.AdamW(enc.parameters(), lr=2e-3, weight_decay=0.01)
    step = 0
    if os.path.exists(path):
        ck = torch.load(path)
        enc.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); step = ck["step"]
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    while step < args.encoder_steps:
        idx = np.sort(rng.choice(train.count, size=args.batch, replace=False))
        pix, lab = train.pixels(idx).to(device), train.cell_labels(idx).to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.encoder_steps, 2e-3)
        loss = cell_loss(enc, pix, lab)
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
        if step % 200 == 0 or step == args.encoder_steps:
            acc = cell_accuracy(enc, held, device)
            rate = step / max(1e-9, time.time() - t0)
            print(f"[encoder] step {step} loss {loss.item():.4f} held-out cell acc {acc} ({rate:.1f} steps/s)", flush=True)
            save(path, model=enc.state_dict(), opt=opt.state_dict(), step=step)
    return enc


def cell_loss(enc, pix, lab):
    s, c, d = enc.cell_logits(enc(pix))
    return sum(F.cross_entropy(x.flatten(0, 1), lab[..., i].flatten()) for i, x in enumerate((s, c, d)))


@torch.no_grad()
def cell_accuracy(enc, held, device, n=256):
    idx = np.arange(n)
    pix, lab = held.pixels(idx).to(device), held.cell_labels(idx).to(device)
    logits = enc.cell_logits(enc(pix))
    return {k: round((x.argmax(-1) == lab[..., i]).float().mean().item(), 4) for i, (k, x) in enumerate(zip(("shape", "colour", "digit"), logits))}


@torch.no_grad()
def encode_all(enc, data, device, batch=500):
    enc.eval()
    out = []
    for start in range(0, data.count, batch):
        idx = np.arange(start, min(data.count, start + batch))
        out.append(enc(data.pixels(idx).to(device)).cpu())
    return torch.cat(out)


def train_decoder(name, args, train, held, feats, held_feats, device):
    path = os.path.join(args.run, f"{name}.ckpt")
    total = getattr(args, f"{name}_steps")
    base_lr = args.small_lr if name == "small" and args.small_lr else args.lr
    torch.manual_seed(args.seed + (1 if name == "small" else 2))
    model = Decoder(len(train.vocab), d_vis=D_VIS, **SIZES[name]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=0.01, betas=(0.9, 0.98))
    step, history = 0, []
    if os.path.exists(path):
        ck = torch.load(path)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); step = ck["step"]; history = ck["history"]
    rng = np.random.default_rng(args.seed * 1000 + step)
    t0, s0 = time.time(), step
    print(f"[{name}] {sum(p.numel() for p in model.parameters())} params, from step {step} of {total}", flush=True)
    while step < total:
        model.train()
        idx = rng.choice(train.count, size=args.batch, replace=False)
        ids, tgt = multi_turn_batch(train, idx, args.turns, rng)
        vis = feats[idx].to(device)
        ids, tgt = ids.to(device), tgt.to(device)
        pad = torch.cat([torch.zeros(len(idx), vis.shape[1], dtype=torch.bool), ids.cpu() == PAD], dim=1).to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, base_lr)
        logits = model(vis, ids, key_padding=pad)[:, vis.shape[1]:]
        # logits at position t predict token t+1.
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tgt[:, :-1].flatten(), ignore_index=-100)
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); step += 1
        if step % args.eval_every == 0 or step == total:
            acc = evaluate(model, held, held_feats, device)
            rate = (step - s0) / max(1e-9, time.time() - t0)
            history.append(dict(step=step, loss=round(loss.item(), 4), **acc))
            left = (total - step) / max(rate, 1e-9) / 60
            print(f"[{name}] step {step} loss {loss.item():.4f} held-out {acc} {rate:.2f} steps/s, {left:.1f} min left", flush=True)
            save(path, model=model.state_dict(), opt=opt.state_dict(), step=step, history=history, size=SIZES[name])
    return model


@torch.no_grad()
def evaluate(model, held, held_feats, device, images=500):
    """Single-turn held-out accuracy of the first answer token, overall and per tier."""
    model.eval()
    hits, counts = {}, {}
    rows, answers, tiers, img = [], [], [], []
    for i in range(images):
        for tier, q, a in held.questions[i]:
            rows.append(prompt_ids(q)); answers.append(a); tiers.append(tier); img.append(i)
    for start in range(0, len(rows), 256):
        sl = slice(start, start + 256)
        ids, _ = pad_rows(rows[sl], rows[sl])
        vis = held_feats[img[sl]].to(device)
        logits = model(vis, ids.to(device))
        last = torch.tensor([len(r) - 1 for r in rows[sl]]) + vis.shape[1]
        pred = logits[torch.arange(len(last)), last].argmax(-1).cpu()
        for p, a, t in zip(pred.tolist(), answers[sl], tiers[sl]):
            hits[t] = hits.get(t, 0) + (p == a); counts[t] = counts.get(t, 0) + 1
    out = {t: round(hits[t] / counts[t], 3) for t in sorted(counts)}
    out["all"] = round(sum(hits.values()) / sum(counts.values()), 3)
    return out


def main():
    args = parse_args()
    torch.set_num_threads(2 if args.device == "cpu" else torch.get_num_threads())
    torch.manual_seed(args.seed)
    os.makedirs(args.run, exist_ok=True)
    device = torch.device(args.device)
    train = SceneData(os.path.join(args.data, "train"))
    held = SceneData(os.path.join(args.data, "heldout"), vocab=train.vocab)
    with open(os.path.join(args.run, "config.json"), "w") as f:
        json.dump(dict(vars(args), sizes=SIZES, d_vis=D_VIS, vocab=train.vocab, data_meta=train.meta), f, indent=2)
    stages = args.stages.split(",")
    t0 = time.time()
    enc = train_encoder(args, train, held, device)  # resumes; a finished encoder only loads
    feats, held_feats = encode_all(enc, train, device), encode_all(enc, held, device)
    print(f"encoded the training images in {time.time() - t0:.0f}s", flush=True)
    for name in ("small", "large"):
        if name in stages:
            train_decoder(name, args, train, held, feats, held_feats, device)
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
