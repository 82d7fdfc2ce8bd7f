"""Reads the scene generator's packed datasets (`npm run scenes -- --format bin`)."""
import json
import os

import numpy as np
import torch

SPECIALS = ["<pad>", "<eos>", "<image>", "question:", "answer:"]
PAD, EOS, IMAGE, QUESTION, ANSWER = range(len(SPECIALS))
PIXEL_MEAN = 0.5
PIXEL_STD = 0.25


def vocabulary(meta):
    return SPECIALS + list(meta["words"])


class SceneData:
    def __init__(self, folder, vocab=None):
        with open(os.path.join(folder, "meta.json")) as f:
            self.meta = json.load(f)
        self.vocab = vocab or vocabulary(self.meta)
        self.token = {w: i for i, w in enumerate(self.vocab)}
        n, side, grid = self.meta["count"], self.meta["side"], self.meta["grid"]
        self.images = np.memmap(os.path.join(folder, "images.u8"), np.uint8, "r", shape=(n, side, side, 3))
        self.cells = np.fromfile(os.path.join(folder, "cells.u8"), np.uint8).reshape(n, grid * grid, 3)
        self.questions = []  # per image: list of (tier, prompt ids, answer id)
        self.evidence = []  # per image, per question: the cells that decide the answer
        with open(os.path.join(folder, "qa.jsonl")) as f:
            for line in f:
                qa = json.loads(line)
                self.questions.append([
                    (q["tier"], [self.token[w] for w in q["question"].split()], self.token[q["answer"]]) for q in qa
                ])
                self.evidence.append([q.get("evidence", []) for q in qa])
        self.count = n

    def pixels(self, idx):
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx])).float() / 255.0
        return ((x - PIXEL_MEAN) / PIXEL_STD).permute(0, 3, 1, 2).contiguous()

    def cell_labels(self, idx):
        return torch.from_numpy(self.cells[idx].astype(np.int64))


def prompt_ids(question_ids):
    """The single-turn prompt after the image: `question: <words> answer:`."""
    return [QUESTION] + list(question_ids) + [ANSWER]


def multi_turn_batch(data, idx, turns, rng):
    """Text ids [B,T] and targets [B,T] (-100 where no loss) for several QA turns per
    image, and grounding targets: (row, text position of `answer:`, evidence hops). A hop
    is the set of cells looked at in one step: spatial questions have two (the named
    anchor, then its neighbour, in the generator's evidence order), the others one."""
    rows, targets, grounding = [], [], []
    for b, i in enumerate(idx):
        qs = data.questions[i]
        picks = rng.choice(len(qs), size=min(turns, len(qs)), replace=False)
        ids, tgt = [], []
        for p in picks:
            tier, q, a = qs[p]
            prompt = prompt_ids(q)
            cells = data.evidence[i][p]
            if cells:
                hops = [[c] for c in cells] if tier == "spatial" else [cells]
                grounding.append((b, len(ids) + len(prompt) - 1, hops))
            ids += prompt + [a, EOS]
            tgt += [-100] * (len(prompt) - 1) + [a, EOS, -100]
        rows.append(ids)
        targets.append(tgt)
    return (*pad_rows(rows, targets), grounding)


def pad_rows(rows, targets):
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), PAD, dtype=torch.long)
    tgt = torch.full((len(rows), t), -100, dtype=torch.long)
    for i, (r, g) in enumerate(zip(rows, targets)):
        ids[i, : len(r)] = torch.tensor(r)
        tgt[i, : len(g)] = torch.tensor(g)
    return ids, tgt
