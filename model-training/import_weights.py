"""Saves weights that came back from another machine as plain arrays (npz, written
there from a checkpoint's model state) as a checkpoint here, so that Debian's torch
1.13 can export them whatever torch trained them.

    /usr/bin/python3 model-training/import_weights.py --npz a.npz [b.npz ...] --meta weights.json --run NAME --out RUN/small-tune.ckpt

--meta is a JSON list of {run, step, history, size, arch} (one entry per trained run);
--run picks the entry. Several npz files are chunks of one state dict.
"""
import argparse
import json

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--npz", nargs="+", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    meta = next(m for m in json.load(open(args.meta)) if m["run"] == args.run)
    state = {}
    for path in args.npz:
        with np.load(path) as chunk:
            state.update({k: torch.from_numpy(chunk[k].astype(np.float32) if chunk[k].dtype == np.float16 else chunk[k])
                          for k in chunk.files})
    ck = {k: meta[k] for k in ("step", "history", "size", "arch")}
    torch.save(dict(ck, model=state), args.out)
    print(f"{args.out}: {len(state)} tensors, step {ck['step']}, last held-out {ck['history'][-1]}")


if __name__ == "__main__":
    main()
