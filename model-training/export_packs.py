"""Exports the trained pair as two model packs (ONNX graphs, tokenizer, manifest,
checksums, conformance fixture) and verifies every graph against torch with
onnxruntime (through onnxruntime-node, the runtime the product uses).

    /usr/bin/python3 model-training/export_packs.py --run training-runs/pair --out model-packs

Writes packs of contract v2 (stitch-model-pack/2, shared/schemas/model-pack.ts).
"""
import argparse
import hashlib
import inspect
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
import torch

from pack_graphs import EmbedGraph, LeanSegmentGraph, LeanVisionGraph, SegmentGraph, VisionGraph
from reference_engine import ReferencePack, generate
from scene_data import ANSWER, IMAGE, QUESTION, SPECIALS, SceneData
from stitch_vlm import VisionEncoder, build_decoder, encoder_hidden_of, load_checkpoint

FAMILY = "stitch-scenes-v1"
SPLITS = {"small": [], "large": [1, 2]}
# 17: LayerNorm exports as one LayerNormalization node (14 spelled it out in 9; onnxruntime
# fused them back into the same kernel, so the numbers are the same).
OPSET = 17
CONTRACT = "stitch-model-pack/2"
# The prompt, as the engine builds it (shared/schemas/model-pack.ts, PromptSchema): this template renders the last
# user message's text parts (joined by a space, trimmed; a plain string content is the text) as
# `<image> question: ... answer:`; the one <image> becomes the 64 visual tokens. Plain Jinja, for @huggingface/jinja.
CHAT_TEMPLATE = (
    '{%- set user = messages | selectattr("role", "equalto", "user") | list | last -%}'
    "{%- if user.content is string -%}{%- set text = user.content -%}"
    '{%- else -%}{%- set text = user.content | selectattr("type", "equalto", "text") | map(attribute="text") | join(" ") -%}'
    "{%- endif -%}"
    "<image> question: {{ text | trim }} answer:"
)
MAX_QUESTION_TOKENS = 24
# Rotary positions have no limit; this covers 64 visual + 2 template + 24 question + 64 generated tokens (154).
CONTEXT_TOKENS = 256
ROPE_THETA = 10000.0  # stitch_vlm.rotary's base
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load_models(run):
    cfg = json.load(open(os.path.join(run, "config.json")))
    meta = cfg["data_meta"]
    enc_ck = load_checkpoint(os.path.join(run, "encoder.ckpt"))
    enc = VisionEncoder(meta["cellPx"], cfg["d_vis"], hidden=encoder_hidden_of(enc_ck))
    enc.load_state_dict(enc_ck["model"])
    models = {}
    for role in ("small", "large"):
        tuned = os.path.join(run, f"{role}-tune.ckpt")  # the tuning stage's result, when it ran
        is_tuned = os.path.exists(tuned)
        ck = load_checkpoint(tuned if is_tuned else os.path.join(run, f"{role}.ckpt"))
        ck["tuned"] = is_tuned
        arch = ck.get("arch", dict(grounded=False, tied_qk=False))
        dec = build_decoder(cfg["vocab"], ck["size"], cfg["d_vis"], enc, **arch)
        dec.load_state_dict(ck["model"])
        models[role] = (dec.eval(), ck)
    return cfg, enc.eval(), models


def projector_macs(dec):
    """Per visual token: the projector's linear layers (grounded ones: also their
    attribute heads and the probability-weighted word embeddings)."""
    macs = sum(m.in_features * m.out_features for m in dec.project.modules() if isinstance(m, torch.nn.Linear))
    words = [ids for name, ids in dec.project.named_buffers() if name.startswith("words_")]
    return macs + sum(len(ids) * dec.d for ids in words)


def export_graph(module, args, path, inputs, outputs, dynamic):
    # The TorchScript exporter (torch >= 2.9 defaults to the dynamo one, which ignores the lean graphs' symbolic()).
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs,
                      dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True, **legacy)


def export_pack(role, cfg, enc, dec, ck, out_dir, verify_cases):
    os.makedirs(out_dir, exist_ok=True)
    meta = cfg["data_meta"]
    side, grid = meta["side"], meta["grid"]
    n_vis = grid * grid
    d, heads = dec.d, dec.heads
    dh = d // heads
    pix = torch.randn(2, 3, side, side)
    # The Lean graphs are what gets exported (the same arithmetic in far fewer ONNX
    # nodes, see pack_graphs.py); every check below compares them with the training
    # modules' own forwards (VisionGraph, SegmentGraph).
    export_graph(LeanVisionGraph(enc, dec, side, side).eval(), (pix,), os.path.join(out_dir, "vision.onnx"),
                 ["pixel_values"], ["visual_embeds"], {"pixel_values": {0: "batch"}, "visual_embeds": {0: "batch"}})
    declare_dim(os.path.join(out_dir, "vision.onnx"), "visual_embeds", 1, n_vis)
    ids = torch.tensor([[3, 7, 9, 4]])
    export_graph(EmbedGraph(dec).eval(), (ids,), os.path.join(out_dir, "embed.onnx"), ["input_ids"], ["inputs_embeds"],
                 {"input_ids": {0: "batch", 1: "seq"}, "inputs_embeds": {0: "batch", 1: "seq"}})
    bounds = [0] + SPLITS[role] + [len(dec.layers)]
    segments = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        seg = LeanSegmentGraph(dec, a, b).eval()
        t, p = 5, 3
        args = [torch.randn(1, t, d), torch.arange(p, p + t).unsqueeze(0), torch.ones(1, p + t, dtype=torch.long),
                torch.rand(1, t)]
        args += [torch.randn(1, heads, p, dh) for _ in range(2 * (b - a))]
        args += [torch.tensor([1, t - 1])] if seg.final else []
        dyn = {"hidden_states": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"},
               "attention_mask": {0: "batch", 1: "total"}, "query_weights": {0: "batch", 1: "seq"},
               "logit_rows": {0: "rows"}}
        for name in seg.input_names():
            if name.startswith("past_"):
                dyn[name] = {0: "batch", 2: "past"}
        for name in seg.output_names():
            dyn[name] = {0: "batch", 2: "total"} if name.startswith("present") else {0: "batch", 1: "seq"}
            dyn[name] = {0: "batch", 1: "total"} if name.startswith("attention") else dyn[name]
            dyn[name] = {0: "batch", 1: "rows"} if name == "logits" else dyn[name]
        file = f"decoder-{a}-{b}.onnx"
        export_graph(seg, tuple(args), os.path.join(out_dir, file), seg.input_names(), seg.output_names(), dyn)
        segments.append({"file": file, "first_layer": a, "end_layer": b})
        verify_cases += segment_cases(SegmentGraph(dec, a, b).eval(), out_dir, file, d, heads, dh)
    verify_cases.append(simple_case(VisionGraph(enc, dec).eval(), out_dir, "vision.onnx", {"pixel_values": pix}))
    verify_cases.append(simple_case(EmbedGraph(dec).eval(), out_dir, "embed.onnx", {"input_ids": torch.tensor([[0, 5, 9, 12, 30]])}))
    return segments, n_vis


def declare_dim(path, output, axis, size):
    """Declares a fixed size on an output axis that tracing left with a generated name."""
    model = onnx.load(path)
    dim = next(o for o in model.graph.output if o.name == output).type.tensor_type.shape.dim[axis]
    dim.Clear()
    dim.dim_value = size
    onnx.save(model, path)


def segment_cases(seg, out_dir, file, d, heads, dh):
    # Queries over a past; a prefill (empty past, as the engine starts); a decode step
    # (one token); a 75-token prefill; a batch of two (the graphs keep batch dynamic); and
    # each with attention_mask of ones, then with a 0 (a key hidden from every query).
    cases = []
    for b, positions, p in [(1, [10, 11, 14], 6), (1, [0, 1, 2, 3, 4], 0), (1, [37], 30), (1, list(range(75)), 0),
                            (2, [5, 9, 12], 4)]:
        t = len(positions)
        # A past key, or (no past) one in the middle: never a query's only key (the reference would give NaN).
        for hidden_key in (None, p - 2 if p >= 2 else t // 2):
            mask = torch.ones(b, p + t, dtype=torch.long)
            if hidden_key is not None:
                mask[:, hidden_key] = 0
            inputs = {"hidden_states": torch.randn(b, t, d), "position_ids": torch.tensor([positions] * b),
                      "attention_mask": mask, "query_weights": torch.rand(b, t)}
            for name in seg.input_names():
                if name.startswith("past_"):
                    inputs[name] = torch.randn(b, heads, p, dh)
            if seg.final:
                inputs["logit_rows"] = torch.tensor(sorted({0, t // 2, t - 1}))
            cases.append(simple_case(seg, out_dir, file, inputs))
    return cases


def simple_case(module, out_dir, file, inputs):
    with torch.no_grad():
        outs = module(*inputs.values())
    outs = outs if isinstance(outs, tuple) else (outs,)
    return {"model": os.path.join(out_dir, file), "inputs": {k: tensor_json(v) for k, v in inputs.items()},
            "expected": [tensor_json(o) for o in outs]}


def tensor_json(t):
    dtype = "int64" if t.dtype == torch.int64 else "float32"
    return {"dims": list(t.shape), "dtype": dtype, "data": t.flatten().tolist()}


def verify_with_onnxruntime(cases):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
    node = os.path.join(ROOT, "node_modules", ".bin", "node")
    res = subprocess.run([node, os.path.join(HERE, "verify_onnx.mjs"), f.name], capture_output=True, text=True)
    os.unlink(f.name)
    if res.returncode != 0:
        raise SystemExit(f"onnxruntime verification failed:\n{res.stderr}")
    report = json.loads(res.stdout)
    worst = 0.0
    for r in report:
        print(f"  verify {os.path.relpath(r['model'], ROOT)}: max abs error {max(r['errors']):.2e} over {len(r['errors'])} outputs")
        worst = max(worst, max(r["errors"]))
    if worst > 1e-4:
        raise SystemExit(f"ONNX outputs differ from torch by {worst}")
    return worst


def tokenizer_json(vocab):
    added = [{"id": i, "content": w, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, w in enumerate(vocab) if w in SPECIALS]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": {w: i for i, w in enumerate(vocab)}, "unk_token": "<unk>"},
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def fixture(pack, data, n_vis, count=3, max_tokens=4):
    """The conformance fixture (contract v2): per case the conversation, the prompt ids the engine must build
    from it (n_vis <image> tokens, the visual span, then `question: ... answer:`) and torch's results."""
    cases = []
    for i in range(count):
        for tier, q, a in data.questions[i][:2]:
            tokens, step_logits, received = generate(pack, data.pixels([i]), q, max_tokens=max_tokens)
            question = " ".join(data.vocab[t] for t in q)
            cases.append({
                "name": f"{tier} {data.meta['seed']}/{i}", "scene": {"seed": data.meta["seed"], "index": i},
                "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
                "input_ids": [IMAGE] * n_vis + [QUESTION] + list(q) + [ANSWER],
                "visual_span": {"offset": 0, "length": n_vis},
                "tokens": tokens, "first_logits": [round(v, 6) for v in step_logits[0].tolist()],
                "attention_received": [round(v, 6) for v in received.tolist()],
                "expected_answer": data.vocab[a],
            })
    return {"max_tokens": max_tokens, "tolerance": {"logits": 1e-3, "attention": 1e-3}, "cases": cases}


def write_pack(role, cfg, enc, dec, ck, out_dir, data, cases, version=None, source=None):
    """Exports one model of the pair as a v2 pack in out_dir (graphs, tokenizer, fixture, manifest); appends the
    graphs' verification cases to cases."""
    meta = cfg["data_meta"]
    segments, n_vis = export_pack(role, cfg, enc, dec, ck, out_dir, cases)
    json.dump(tokenizer_json(cfg["vocab"]), open(os.path.join(out_dir, "tokenizer.json"), "w"), indent=1)
    pack = ReferencePack(enc, dec, SPLITS[role])
    fix = fixture(pack, data, n_vis)
    json.dump(fix, open(os.path.join(out_dir, "fixture.json"), "w"))
    files = ["vision.onnx", "embed.onnx", "tokenizer.json"] + [s["file"] for s in segments]
    weights = hashlib.sha256(b"".join(open(os.path.join(out_dir, f), "rb").read() for f in files)).hexdigest()[:10]
    enc_macs = n_vis * sum(m.in_features * m.out_features for m in enc.mlp if isinstance(m, torch.nn.Linear))
    proj_macs = n_vis * projector_macs(dec)
    vocab = cfg["vocab"]
    manifest = {
        "format": CONTRACT, "family": FAMILY, "role": role, "name": f"stitch-scenes-{role}",
        "version": version or f"1.0.0+{weights}",
        "image": {
            "processor": "fixed", "tile": {"width": meta["side"], "height": meta["side"]},
            "min_tiles": 1, "max_tiles": 1, "thumbnail": False,
            "resample": "lanczos",  # the engine resizes with sharp's default (lanczos3)
            "rescale": 1 / 255, "mean": [0.5] * 3, "std": [0.25] * 3,  # scene_data.PIXEL_MEAN / PIXEL_STD
            "patch_px": meta["cellPx"], "pixel_shuffle": 1, "grid": {"rows": meta["grid"], "cols": meta["grid"]},
            "tokens_per_tile": n_vis,
        },
        "prompt": {
            "tokenizer": "tokenizer.json", "chat_template": CHAT_TEMPLATE, "default_system_prompt": None,
            "image_placeholder": "<image>", "image_span": {"start": None, "context": "<image>", "end": None},
            "stop_token_ids": [vocab.index("<eos>")], "bos_token": None, "eos_token": None,
            "max_text_tokens": MAX_QUESTION_TOKENS, "context_tokens": CONTEXT_TOKENS,
        },
        "decoder": {"hidden": dec.d, "layers": len(dec.layers), "heads": dec.heads, "kv_heads": dec.heads,
                    "head_dim": dec.d // dec.heads, "mlp_hidden": 4 * dec.d,
                    "mlp": "gelu",  # DecoderLayer.mlp: Linear, GELU, Linear
                    "vocab": len(vocab), "rope": {"theta": ROPE_THETA, "positions": "1d"}, "dtype": "float32"},
        "vision": {"hidden": dec.d, "flops_per_token": 2 * (enc_macs + proj_macs) / meta["grid"] ** 2},
        "split_layers": SPLITS[role],
        "graphs": {"vision": "vision.onnx", "embed": "embed.onnx", "segments": segments, "external_data": []},
        "checksums": {f: sha256(os.path.join(out_dir, f)) for f in files + ["fixture.json"]},
        "conformance": {"fixture": "fixture.json", "tolerance": fix["tolerance"]},
        "provenance": {"source": source or "model-training/train_pair.py checkpoints",
                       "exporter": "model-training/export_packs.py (torch.onnx TorchScript exporter, lean graphs of pack_graphs.py)",
                       "torch": torch.__version__, "onnx": onnx.__version__, "opset": OPSET},
        "training": {"steps": ck["step"] + (cfg[f"{role}_steps"] if ck["tuned"] else 0),
                     "params": sum(p.numel() for p in dec.parameters() if p.requires_grad),
                     "encoder_params": sum(p.numel() for p in enc.parameters()),
                     "heldout_accuracy": ck["history"][-1] if ck["history"] else None,
                     "config": {**{k: cfg.get(k) for k in ("seed", "batch", "turns", "lr", f"{role}_lr", f"{role}_steps", "encoder_steps",
                                                             "encoder_hidden", "grounding_weight", f"{role}_hop_grounding_from",
                                                             "device")},
                                **({k: cfg.get(k) for k in (f"{role}_tune_steps", "tune_lr", "prune_share")} if ck["tuned"] else {}),
                                **ck.get("arch", {})}},
    }
    json.dump(manifest, open(os.path.join(out_dir, "manifest.json"), "w"), indent=2)
    print(f"wrote {out_dir}: {sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir)) / 1e6:.2f} MB")
    return manifest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="training-runs/pair")
    ap.add_argument("--out", default="model-packs")
    ap.add_argument("--version", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg, enc, models = load_models(args.run)
    fixture_dir = os.path.join(args.run, "fixture-data")
    subprocess.run(["npx", "tsx", "scene-generator/cli.ts", "--seed", "3", "--count", "3", "--format", "bin",
                    "--questions", "2", "--out", fixture_dir], cwd=ROOT, check=True, capture_output=True)
    data = SceneData(fixture_dir, vocab=cfg["vocab"])
    cases = []
    for role, (dec, ck) in models.items():
        write_pack(role, cfg, enc, dec, ck, os.path.join(args.out, f"stitch-scenes-{role}"), data, cases,
                   version=args.version, source=f"{args.run} checkpoints (model-training/train_pair.py)")
    worst = verify_with_onnxruntime(cases)
    print(f"all graphs verified: max abs error {worst:.2e}")


if __name__ == "__main__":
    main()
