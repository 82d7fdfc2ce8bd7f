"""A decoder segment exported a few layers at a time and chained into the one graph the pack contract names.

Each piece is the segment graph of its own layers (same inputs and outputs: decoder.SegmentGraph), traced with only
those layers' weights in memory, converted to the pack's weight type and written with its weights in an external
file. The chain then connects piece i's `hidden_out` to piece i+1's `hidden_states`, shares the position, mask and
query-weight inputs, adds the pieces' `attention_received` (SGP's sum over the segment's layers) and takes
`attention_last` from the last piece; the weights are copied, tensor by tensor, into the segment's one data file.
Memory is bounded by a piece, not by the segment: an 8B segment of 14 layers never exists in memory."""

import math
import os
from pathlib import Path

import onnx
from onnx import TensorProto, helper

SHARED_INPUTS = ("position_ids", "attention_mask", "query_weights", "logit_rows")
# Offsets of tensors in the data file: page-aligned, so onnxruntime can map them.
ALIGN = 4096


def layers_per_piece(layer_bytes: int, budget_bytes: int) -> int:
    return max(1, budget_bytes // max(1, layer_bytes))


def piece_bounds(first: int, end: int, per_piece: int) -> list[tuple[int, int]]:
    starts = list(range(first, end, per_piece))
    return [(a, min(a + per_piece, end)) for a in starts]


def chain(pieces: list[Path], out: Path, data_name: str) -> None:
    """Writes `out` (and `data_name` beside it) from the piece graphs, in layer order. A single piece is
    copied the same way, so every segment's data is laid out alike."""
    models = [onnx.load(str(p), load_external_data=False) for p in pieces]
    nodes, inits, inputs, outputs, value_info, received = [], [], [], [], [], []
    seen_inputs: set[str] = set()
    previous_hidden = None
    for i, model in enumerate(models):
        g = model.graph
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
            raise AssertionError("a piece graph has subgraphs: chain() does not rename inside them")
        last_piece = i == len(models) - 1
        names = renamer(g, i, previous_hidden, last_piece)
        for n in g.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            copy.name = f"p{i}/{n.name}"
            copy.input[:] = [names(x) for x in n.input]
            copy.output[:] = [names(x) for x in n.output]
            nodes.append(copy)
        for t in g.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            copy.name = names(t.name)
            for entry in copy.external_data:
                if entry.key == "location":
                    entry.value = str(pieces[i].parent / entry.value)
            inits.append(copy)
        for v in g.value_info:
            copy = onnx.ValueInfoProto()
            copy.CopyFrom(v)
            copy.name = names(v.name)
            value_info.append(copy)
        for v in g.input:
            if names(v.name) == v.name and v.name not in seen_inputs and (i == 0 or v.name != "hidden_states"):
                seen_inputs.add(v.name)
                inputs.append(v)
        for v in g.output:
            if v.name.startswith("present_") or (last_piece and v.name in ("logits", "hidden_out", "attention_last")):
                outputs.append(v)
            if v.name == "attention_received":
                received.append(names(v.name))
                received_type = v
        previous_hidden = names("hidden_out")
    total = received[0]
    for j, name in enumerate(received[1:]):
        total_next = "attention_received" if j == len(received) - 2 else f"attention_received_sum_{j}"
        nodes.append(helper.make_node("Add", [total, name], [total_next], name=f"attention_received_add_{j}"))
        total = total_next
    if len(received) == 1:
        nodes.append(helper.make_node("Identity", [total], ["attention_received"], name="attention_received_out"))
    order = {"hidden_out": 0, "logits": 0, "attention_received": 2, "attention_last": 3}
    outputs.append(received_type)
    outputs.sort(key=lambda v: (order.get(v.name, 1), present_order(v.name)))
    inputs.sort(key=lambda v: input_order(v.name))
    graph = helper.make_graph(nodes, "segment", inputs, outputs, inits, value_info=value_info)
    merged = helper.make_model(graph, opset_imports=union_opsets(models), ir_version=models[0].ir_version)
    copy_weights(merged, out.parent / data_name, data_name)
    onnx.save_model(merged, str(out))


def renamer(g: onnx.GraphProto, i: int, previous_hidden: str | None, last_piece: bool):
    """Piece i's names in the chained graph: the shared inputs and the per-layer cache names keep theirs (they are
    unique by layer), the hidden input is the previous piece's output, the final outputs keep theirs, and every
    other name gets the piece's prefix."""
    keep = set(SHARED_INPUTS)
    keep |= {v.name for v in [*g.input, *g.output] if v.name.startswith(("past_", "present_"))}
    if last_piece:
        keep |= {"logits", "hidden_out", "attention_last"}
    if i == 0:
        keep.add("hidden_states")

    def name(x: str) -> str:
        if not x or x in keep:
            return x
        if x == "hidden_states" and previous_hidden is not None:
            return previous_hidden
        return f"p{i}/{x}"

    return name


def present_order(name: str) -> tuple[int, int]:
    if not name.startswith("present_"):
        return (0, 0)
    kind, layer = name.removeprefix("present_").split("_")
    return (int(layer), 0 if kind == "key" else 1)


def input_order(name: str) -> tuple[int, int, int]:
    fixed = {"hidden_states": 0, "position_ids": 1, "attention_mask": 2, "query_weights": 3, "logit_rows": 9}
    if name in fixed:
        return (fixed[name], 0, 0)
    kind, layer = name.removeprefix("past_").split("_")
    return (5, int(layer), 0 if kind == "key" else 1)


def union_opsets(models: list[onnx.ModelProto]) -> list:
    versions: dict[str, int] = {}
    for m in models:
        for o in m.opset_import:
            versions[o.domain] = max(versions.get(o.domain, 0), o.version)
    return [helper.make_opsetid(domain, version) for domain, version in versions.items()]


def copy_weights(model: onnx.ModelProto, data_path: Path, data_name: str) -> None:
    """Every externally stored tensor copied into one data file (page-aligned offsets), its entry rewritten; the
    pieces' files are read 64 MiB at a time, never whole."""
    with open(data_path, "wb") as out:
        for t in model.graph.initializer:
            if t.data_location != TensorProto.EXTERNAL:
                continue
            entries = {e.key: e.value for e in t.external_data}
            offset, length = int(entries.get("offset", 0)), int(entries["length"])
            start = math.ceil(out.tell() / ALIGN) * ALIGN
            out.write(b"\0" * (start - out.tell()))
            with open(entries["location"], "rb") as src:
                src.seek(offset)
                left = length
                while left:
                    block = src.read(min(left, 64 << 20))
                    out.write(block)
                    left -= len(block)
            del t.external_data[:]
            for key, value in (("location", data_name), ("offset", str(start)), ("length", str(length))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
        out.flush()
        os.fsync(out.fileno())
