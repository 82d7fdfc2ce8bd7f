"""Rewrites a pack of contract v1 (`stitch-model-pack/1`) as a pack of contract v2 (`stitch-model-pack/2`,
shared/schemas/model-pack.ts) by ONNX graph surgery: the weights and every arithmetic step the v1 graphs do
stay as they are; what changes is the graphs' interface and the manifest and fixture formats.

    .venv-export/bin/python model-training/upgrade_pack_v2.py model-packs/stitch-scenes-small [--out DIR]

Without --out the pack is rewritten in place. Before anything is written, every rewritten segment is run with
onnxruntime beside its v1 graph on several inputs (prefill with an empty past, steps over a past, a 75-token
prefill) and must give the v1 numbers (see check_segment); the run prints the figures.

This is the one-off for the committed embedded pair, whose training checkpoints (training-runs/pair-v4) are not
kept: a fresh `npm run train:pair` writes v2 graphs and the v2 manifest natively (export_packs.py,
pack_graphs.py). What the surgery does to each decoder segment:
- inputs `attention_mask` int64 [1, P+T] and `query_weights` float32 [1, T] (and `logit_rows` int64 [R] in the
  last segment) beside `hidden_states`, `position_ids` and the past;
- the causal `Where(causal, -inf, scores)` of every layer becomes `scores + bias`, with one bias per segment:
  -inf where the causal order hides the key (as before), float32 min where attention_mask is 0, 0 elsewhere.
  Visible scores get + 0 (the same value), so with a mask of ones the softmax inputs and every output are
  bit-identical to v1; a masked key gets probability 0, and a query whose keys are all masked gets a finite
  (meaningless) row instead of NaN;
- `attention` [1, T, P+T] becomes `attention_received` = query_weights @ attention: [1, P+T];
- `attention_last` [1, T, P+T] becomes its last query row: [1, P+T];
- the last segment's `logits` [1, T, V] become the rows asked for: `logit_rows` gathers the hidden states before
  the final LayerNorm and head, [1, R, V].
The vision graph only gets its token axis declared (64); the embed graph and tokenizer.json are unchanged.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from export_packs import CHAT_TEMPLATE  # one chat template for both ways of writing the embedded pair's packs

CONTRACT = "stitch-model-pack/2"
SOURCE = "training-runs/pair-v4 checkpoints (model-training/train_pair.py)"
UPGRADED = "v1 graphs rewritten to contract v2 by model-training/upgrade_pack_v2.py; weights unchanged"
FLOAT_MIN = float(np.finfo(np.float32).min)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def tensor_value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def topological(nodes, graph_inputs, initializers):
    """The nodes in an order where every input is produced before it is read."""
    ready = set(graph_inputs) | set(initializers) | {""}
    pending, ordered = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise SystemExit(f"graph has a cycle or a missing input near {rest[0].op_type} {list(rest[0].input)}")
        pending = rest
    return ordered


# ---------------------------------------------------------------- segment surgery

def upgrade_segment(model):
    """The v1 segment graph (ModelProto) rewritten to the v2 interface, as a new ModelProto."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    names = [i.name for i in g.input]
    if names[:2] != ["hidden_states", "position_ids"] or "attention" not in [o.name for o in g.output]:
        raise SystemExit(f"not a v1 segment graph: inputs {names}")
    final = g.output[0].name == "logits"
    producers = {o: n for n in g.node for o in n.output}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"}
    consts.update({i.name: numpy_helper.to_array(i) for i in g.initializer})
    nodes = list(g.node)
    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    # 1. The causal masks: Where(Cast(causal), -inf, scores) -> Add(scores, bias).
    wheres = [n for n in nodes if n.op_type == "Where" and n.input[1] in consts and np.isneginf(consts[n.input[1]]).all()]
    if not wheres:
        raise SystemExit("no causal Where(-inf) found")
    causal = set()
    for w in wheres:
        cond = w.input[0]
        while producers[cond].op_type == "Cast":  # the v1 graphs cast the bool Greater to bool
            cond = producers[cond].input[0]
        causal.add(cond)
    if len(causal) != 1:
        raise SystemExit(f"the layers use different causal masks: {causal}")
    causal = causal.pop()  # bool [T, P+T]: key index > query index
    const("v2::zero_i64", np.array(0, np.int64))
    const("v2::float_min", np.array(FLOAT_MIN, np.float32))
    const("v2::zero_f32", np.array(0.0, np.float32))
    const("v2::neg_inf", np.array(-np.inf, np.float32))
    const("v2::axes_12", np.array([1, 2], np.int64))
    new = [
        helper.make_node("Equal", ["attention_mask", "v2::zero_i64"], ["v2::masked"], name="v2/mask/Equal"),
        helper.make_node("Where", ["v2::masked", "v2::float_min", "v2::zero_f32"], ["v2::mask_bias"], name="v2/mask/Where"),
        helper.make_node("Unsqueeze", ["v2::mask_bias", "v2::axes_12"], ["v2::mask_bias4"], name="v2/mask/Unsqueeze"),
        # [T, P+T] with [B, 1, 1, P+T] -> [B, 1, T, P+T], added to every layer's scores [B, H, T, P+T].
        helper.make_node("Where", [causal, "v2::neg_inf", "v2::mask_bias4"], ["v2::bias"], name="v2/mask/Bias"),
    ]
    for w in wheres:
        i = nodes.index(w)
        nodes[i] = helper.make_node("Add", [w.input[2], "v2::bias"], list(w.output), name=(w.name or "Where") + "/v2_bias")

    # 2. attention -> attention_received = query_weights @ attention; attention_last -> its last query row.
    def rename_output(old, new_name):
        for n in nodes:
            n.output[:] = [new_name if o == old else o for o in n.output]
            n.input[:] = [new_name if i == old else i for i in n.input]

    rename_output("attention", "v2::attention_matrix")
    rename_output("attention_last", "v2::attention_last_matrix")
    const("v2::axes_1", np.array([1], np.int64))
    const("v2::last", np.array(-1, np.int64))
    new += [
        helper.make_node("Unsqueeze", ["query_weights", "v2::axes_1"], ["v2::query_weights3"], name="v2/received/Unsqueeze"),
        helper.make_node("MatMul", ["v2::query_weights3", "v2::attention_matrix"], ["v2::received3"], name="v2/received/MatMul"),
        helper.make_node("Squeeze", ["v2::received3", "v2::axes_1"], ["attention_received"], name="v2/received/Squeeze"),
        helper.make_node("Gather", ["v2::attention_last_matrix", "v2::last"], ["attention_last"], axis=1, name="v2/last/Gather"),
    ]

    # 3. logits of the rows asked for: gathered before the final LayerNorm (per-row arithmetic: the same numbers).
    if final:
        head = producers["logits"]
        norm = producers.get(head.input[0])
        if head.op_type == "MatMul" and norm is not None and norm.op_type == "LayerNormalization":
            x = norm.input[0]
            new.append(helper.make_node("Gather", [x, "logit_rows"], ["v2::rows_hidden"], axis=1, name="v2/logit_rows/Gather"))
            norm.input[0] = "v2::rows_hidden"
        else:  # not the lean head: gather the logits themselves
            rename_output("logits", "v2::all_logits")
            new.append(helper.make_node("Gather", ["v2::all_logits", "logit_rows"], ["logits"], axis=1, name="v2/logit_rows/Gather"))

    # Interface.
    hidden_in = g.input[0]
    batch = dims(hidden_in)[0]
    past = [i for i in g.input if i.name.startswith("past_")]
    total = "total"
    inputs = [hidden_in, g.input[1],
              tensor_value("attention_mask", TensorProto.INT64, [batch, total]),
              tensor_value("query_weights", TensorProto.FLOAT, [batch, "seq"])] + past
    if final:
        inputs.append(tensor_value("logit_rows", TensorProto.INT64, ["rows"]))
    outputs = []
    for o in g.output:
        if o.name == "logits":
            vocab = dims(o)[2]
            outputs.append(tensor_value("logits", TensorProto.FLOAT, [batch, "rows", vocab]))
        elif o.name == "attention":
            outputs.append(tensor_value("attention_received", TensorProto.FLOAT, [batch, total]))
        elif o.name == "attention_last":
            outputs.append(tensor_value("attention_last", TensorProto.FLOAT, [batch, total]))
        else:
            outputs.append(o)

    nodes += new
    used = {i for n in nodes for i in n.input}
    nodes = [n for n in nodes if any(o in used or o in {v.name for v in outputs} for o in n.output)]  # drops the Casts, -inf
    initializers = list(g.initializer) + inits
    del g.node[:], g.input[:], g.output[:], g.initializer[:], g.value_info[:]
    g.input.extend(inputs)
    g.output.extend(outputs)
    g.initializer.extend(initializers)
    g.node.extend(topological(nodes, [i.name for i in inputs], [i.name for i in initializers]))
    onnx.checker.check_model(model, full_check=True)
    return model


def upgrade_vision(model, tokens):
    """The vision graph with its token axis declared (v1 left a traced name there). Nothing else changes."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    out = model.graph.output[0]
    if [i.name for i in model.graph.input] != ["pixel_values"] or out.name != "visual_embeds":
        raise SystemExit("not a vision graph with pixel_values -> visual_embeds")
    dim = out.type.tensor_type.shape.dim[1]
    dim.Clear()
    dim.dim_value = tokens
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------- checks against v1

def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def check_segment(v1, v2, label, rng):
    """Runs v1 and v2 on the same inputs; returns the worst figures. Raises if v2 is not v1."""
    s1, s2 = session(v1), session(v2)
    info = {i.name: i for i in s1.get_inputs()}
    past_names = [n for n in info if n.startswith("past_")]
    hidden, heads, dh = info["hidden_states"].shape[2], info[past_names[0]].shape[1], info[past_names[0]].shape[3]
    final = s1.get_outputs()[0].name == "logits"
    first = "logits" if final else "hidden_out"
    worst = dict(received=0.0, received_rel=0.0, mask_past_vs_dropped=0.0, bitwise=True, masked_key_attention=0.0, mask_change=np.inf)
    cases = [(0, 5), (6, 3), (30, 1), (0, 75), (75, 1), (80, 4)]  # (P, T)
    for p, t in cases:
        x = rng.standard_normal((1, t, hidden)).astype(np.float32)
        pos = np.arange(p, p + t, dtype=np.int64)[None] + (3 if p else 0)
        past = {n: rng.standard_normal((1, heads, p, dh)).astype(np.float32) for n in past_names}
        o1 = dict(zip([o.name for o in s1.get_outputs()], s1.run(None, {"hidden_states": x, "position_ids": pos, **past})))
        for weights in (np.ones(t), (np.arange(t) >= t // 2).astype(float), rng.random(t)):
            w = weights.astype(np.float32)[None]
            rows = np.array(sorted({0, t // 2, t - 1}), np.int64)
            feeds = {"hidden_states": x, "position_ids": pos, "attention_mask": np.ones((1, p + t), np.int64),
                     "query_weights": w, **past}
            if final:
                feeds["logit_rows"] = rows
            o2 = dict(zip([o.name for o in s2.get_outputs()], s2.run(None, feeds)))
            same = np.array_equal(o2[first], o1[first][:, rows] if final else o1[first])
            same &= all(np.array_equal(o2[n], o1[n]) for n in o1 if n.startswith("present_"))
            same &= np.array_equal(o2["attention_last"], o1["attention_last"][:, -1])
            worst["bitwise"] &= bool(same)
            expect = w.astype(np.float64) @ o1["attention"][0].astype(np.float64)
            diff = np.abs(o2["attention_received"] - expect).max()
            worst["received"] = max(worst["received"], float(diff))
            worst["received_rel"] = max(worst["received_rel"], float(diff / max(1.0, np.abs(expect).max())))
        # A 0 in the mask: on a past key (when there is one) it must be the same as dropping that key from the
        # cache (positions are explicit); on any key, that key receives nothing and the outputs change.
        for j in ([p // 2] if p else []) + [p + t // 2]:
            if j == p + t - 1 and t == 1 and p == 0:
                continue
            mask = np.ones((1, p + t), np.int64)
            mask[0, j] = 0
            feeds = {"hidden_states": x, "position_ids": pos, "attention_mask": mask,
                     "query_weights": np.ones((1, t), np.float32), **past}
            if final:
                feeds["logit_rows"] = np.arange(t, dtype=np.int64)
            o2 = dict(zip([o.name for o in s2.get_outputs()], s2.run(None, feeds)))
            if any(np.isnan(v).any() for v in o2.values()):
                raise SystemExit(f"{label}: NaN with key {j} masked")
            worst["masked_key_attention"] = max(worst["masked_key_attention"],
                                                float(abs(o2["attention_received"][0, j])), float(abs(o2["attention_last"][0, j])))
            rows_below = slice(None) if j < p else slice(0, j - p)  # queries before the masked current key see no change
            rows_after = slice(None) if j < p else slice(j - p + 1, None)
            if o1[first][:, rows_after].size:
                worst["mask_change"] = min(worst["mask_change"], float(np.abs(o2[first][:, rows_after] - o1[first][:, rows_after]).max()))
            if not np.array_equal(o2[first][:, rows_below], o1[first][:, rows_below]) and j >= p:
                raise SystemExit(f"{label}: masking key {j} changed the queries before it")
            if j < p:
                dropped = {n: np.delete(v, j, axis=2) for n, v in past.items()}
                o3 = s1.run(None, {"hidden_states": x, "position_ids": pos, **dropped})[0]
                worst["mask_past_vs_dropped"] = max(worst["mask_past_vs_dropped"], float(np.abs(o2[first] - o3).max()))
    # A query whose every key is masked: finite, not NaN.
    feeds = {"hidden_states": rng.standard_normal((1, 1, hidden)).astype(np.float32), "position_ids": np.array([[0]], np.int64),
             "attention_mask": np.zeros((1, 1), np.int64), "query_weights": np.ones((1, 1), np.float32),
             **{n: np.zeros((1, heads, 0, dh), np.float32) for n in past_names}}
    if final:
        feeds["logit_rows"] = np.array([0], np.int64)
    worst["all_masked_finite"] = bool(all(np.isfinite(v).all() for v in s2.run(None, feeds)))
    ok = (worst["bitwise"] and worst["received_rel"] <= 1e-6 and worst["masked_key_attention"] == 0.0
          and worst["mask_change"] > 0 and worst["mask_past_vs_dropped"] <= 1e-4 and worst["all_masked_finite"])
    print(f"  {label}: v1 outputs reproduced bit for bit: {worst['bitwise']}; attention_received vs query_weights @ v1 "
          f"attention (float64): max abs diff {worst['received']:.2e}, relative to the row's largest value "
          f"{worst['received_rel']:.2e}; masked key's attention {worst['masked_key_attention']:.1e}; "
          f"smallest output change from one masked key {worst['mask_change']:.2e}; masked past key vs that key dropped "
          f"from the cache: max abs diff {worst['mask_past_vs_dropped']:.2e}; all keys masked -> finite: {worst['all_masked_finite']}", flush=True)
    if not ok:
        raise SystemExit(f"{label}: the v2 graph does not reproduce v1")
    return worst


def check_vision(v1, v2, label, rng):
    s1, s2 = session(v1), session(v2)
    shape = [d if isinstance(d, int) else 1 for d in s1.get_inputs()[0].shape]
    pix = rng.standard_normal(shape).astype(np.float32)
    a, b = s1.run(None, {"pixel_values": pix})[0], s2.run(None, {"pixel_values": pix})[0]
    if not np.array_equal(a, b):
        raise SystemExit(f"{label}: vision output changed")
    print(f"  {label}: visual_embeds {list(b.shape)}, bit for bit as v1")


# ---------------------------------------------------------------- manifest and fixture

def prompt_ids(tokenizer, template, question, image_tokens):
    """The v1 engine's prompt (gpu-worker/engine/tokenize-prompt.ts): the template's text before and after
    {question} and the trimmed question, each encoded without special tokens; the one image token becomes
    image_tokens of them."""
    before, after = template.split("{question}")
    enc = lambda s: tokenizer.encode(s, add_special_tokens=False).ids
    image = tokenizer.token_to_id("<image>")
    head = enc(before)
    assert head[0] == image, "the v1 template must open with <image>"
    return [image] * image_tokens + head[1:] + enc(question.strip()) + enc(after)


def rendered_ids(tokenizer, messages, image_tokens):
    """The v2 way: the chat template rendered (jinja2, as transformers does), tokenised whole, the placeholder
    replaced by the visual span."""
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    image = tokenizer.token_to_id("<image>")
    i = ids.index(image)
    return ids[:i] + [image] * image_tokens + ids[i + 1:], text


def convert_fixture(v1, tokenizer, template, image_tokens):
    cases = []
    for item in v1["items"]:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item["question"]}]}]
        ids = prompt_ids(tokenizer, template, item["question"], image_tokens)
        again, _ = rendered_ids(tokenizer, messages, image_tokens)
        plain, _ = rendered_ids(tokenizer, [{"role": "user", "content": item["question"]}], image_tokens)
        if not ids == again == plain:
            raise SystemExit(f"chat template gives other tokens than v1 for {item['question']!r}: {ids} / {again} / {plain}")
        cases.append({
            "name": f"{item['tier']} {item['seed']}/{item['index']}",
            "scene": {"seed": item["seed"], "index": item["index"]},
            "messages": messages,
            "input_ids": ids,
            "visual_span": {"offset": 0, "length": image_tokens},
            "tokens": item["tokens"],
            "first_logits": item["first_logits"],
            "attention_received": item["attention_received"],
            "expected_answer": item["expected_answer"],
        })
    return {"max_tokens": v1["max_tokens"], "tolerance": v1["tolerance"], "cases": cases}


def v2_manifest(v1, tokenizer, opset, torch_version, image_tokens, checksums, tolerance):
    d = v1["decoder"]
    grid = v1["visual_grid"]
    eos = tokenizer.token_to_id(v1["stop_tokens"][0])
    stop = [tokenizer.token_to_id(t) for t in v1["stop_tokens"]]
    if None in stop or eos is None:
        raise SystemExit(f"stop tokens {v1['stop_tokens']} not in the tokenizer")
    template_tokens = len(prompt_ids(tokenizer, v1["prompt_template"], "", 0))  # question:, answer:
    context = 256  # rotary positions have no limit; 64 visual + 2 template + 24 question + 64 generated = 154
    assert image_tokens + template_tokens + v1["max_question_tokens"] + 64 <= context
    return {
        "format": CONTRACT,
        "family": v1["family"], "role": v1["role"], "name": v1["name"], "version": v1["version"],
        "image": {
            "processor": "fixed", "tile": {"width": v1["image"]["width"], "height": v1["image"]["height"]},
            "min_tiles": 1, "max_tiles": 1, "thumbnail": False,
            "resample": "lanczos",  # the engine resizes with sharp's default (lanczos3)
            "rescale": 1 / 255, "mean": v1["image"]["mean"], "std": v1["image"]["std"],
            "patch_px": grid["patch_px"], "pixel_shuffle": 1, "grid": {"rows": grid["rows"], "cols": grid["cols"]},
            "tokens_per_tile": grid["rows"] * grid["cols"],
        },
        "prompt": {
            "tokenizer": v1["tokenizer"], "chat_template": CHAT_TEMPLATE, "default_system_prompt": None,
            "image_placeholder": v1["image_token"],
            "image_span": {"start": None, "context": v1["image_token"], "end": None},
            "stop_token_ids": stop, "bos_token": None, "eos_token": None,
            "max_text_tokens": v1["max_question_tokens"], "context_tokens": context,
        },
        "decoder": {
            "hidden": d["hidden"], "layers": d["layers"], "heads": d["heads"], "kv_heads": d["heads"],
            "head_dim": d["hidden"] // d["heads"], "mlp_hidden": d["mlp_hidden"],
            "mlp": "gelu",  # stitch_vlm.DecoderLayer: Linear, GELU (erf), Linear
            "vocab": d["vocab"], "rope": {"theta": 10000.0, "positions": "1d"},  # stitch_vlm.rotary's base
            "dtype": "float32",
        },
        "vision": {"hidden": d["hidden"], "flops_per_token": d["vision_flops_per_image"] / (v1["visual_grid"]["rows"] * v1["visual_grid"]["cols"])},
        "split_layers": v1["split_layers"],
        "graphs": {"vision": v1["graphs"]["vision"], "embed": v1["graphs"]["embed"],
                   "segments": v1["graphs"]["segments"], "external_data": []},
        "checksums": checksums,
        "conformance": {"fixture": "fixture.json", "tolerance": tolerance},
        "provenance": {
            "source": SOURCE,
            "exporter": "model-training/export_packs.py (torch.onnx TorchScript exporter, lean graphs of pack_graphs.py)",
            "torch": torch_version, "onnx": onnx.__version__, "opset": opset,
            "upgraded": UPGRADED,
        },
        **({"training": v1["training"]} if "training" in v1 else {}),
    }


def upgrade(src, out):
    from tokenizers import Tokenizer

    manifest = json.load(open(os.path.join(src, "manifest.json")))
    if manifest.get("format") != "stitch-model-pack/1":
        raise SystemExit(f"{src}: not a v1 pack ({manifest.get('format')})")
    for f, digest in manifest["checksums"].items():
        if sha256(os.path.join(src, f)) != digest:
            raise SystemExit(f"{src}/{f}: checksum mismatch")
    rng = np.random.default_rng(0)
    image_tokens = manifest["visual_grid"]["rows"] * manifest["visual_grid"]["cols"]
    print(f"{src}:")
    graphs = {}
    vision = onnx.load(os.path.join(src, manifest["graphs"]["vision"]))
    graphs[manifest["graphs"]["vision"]] = upgrade_vision(vision, image_tokens)
    check_vision(vision, graphs[manifest["graphs"]["vision"]], manifest["graphs"]["vision"], rng)
    for seg in manifest["graphs"]["segments"]:
        v1 = onnx.load(os.path.join(src, seg["file"]))
        v2 = upgrade_segment(v1)
        print(f"  {seg['file']}: {len(v1.graph.node)} -> {len(v2.graph.node)} nodes")
        check_segment(v1, v2, seg["file"], rng)
        graphs[seg["file"]] = v2
    opset = max(o.version for o in vision.opset_import if o.domain in ("", "ai.onnx"))
    tokenizer = Tokenizer.from_file(os.path.join(src, manifest["tokenizer"]))
    v1_fixture = json.load(open(os.path.join(src, "fixture.json")))
    fixture = convert_fixture(v1_fixture, tokenizer, manifest["prompt_template"], image_tokens)

    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:  # everything written first, then moved into place
        for file, model in graphs.items():
            onnx.save(model, os.path.join(tmp, file))
        for file in [manifest["graphs"]["embed"], manifest["tokenizer"]]:
            shutil.copyfile(os.path.join(src, file), os.path.join(tmp, file))
        with open(os.path.join(tmp, "fixture.json"), "w") as f:
            json.dump(fixture, f)
        files = [manifest["graphs"]["vision"], manifest["graphs"]["embed"], manifest["tokenizer"]]
        files += [s["file"] for s in manifest["graphs"]["segments"]] + ["fixture.json"]
        checksums = {f: sha256(os.path.join(tmp, f)) for f in files}
        v2 = v2_manifest(manifest, tokenizer, opset, vision.producer_version, image_tokens, checksums, v1_fixture["tolerance"])
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(v2, f, indent=2)
            f.write("\n")
        for file in files + ["manifest.json"]:
            os.replace(os.path.join(tmp, file), os.path.join(out, file))
    print(f"  wrote {out} ({CONTRACT}, version {v2['version']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pack", nargs="+", help="v1 pack folders")
    ap.add_argument("--out", default=None, help="where to write the v2 pack (one pack only); default: in place")
    args = ap.parse_args()
    if args.out and len(args.pack) > 1:
        sys.exit("--out takes one pack")
    for pack in args.pack:
        upgrade(pack, args.out or pack)


if __name__ == "__main__":
    main()
