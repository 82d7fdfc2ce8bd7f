"""The decode_steps graph reads the weights the segment and embed graphs already hold: each of its tensors whose
bytes equal a tensor in another graph's external data file is pointed at that file and offset (ONNX external data
names a file per tensor), so nothing is written twice on disk. Tensors no other graph holds externally (constants;
everything when the pack's graphs carry their weights inline, as tiny packs do) are stored inline."""

import hashlib
from pathlib import Path

import onnx
from onnx import TensorProto

from .family import Unsupported
from .onnx_io import INLINE_LIMIT_BYTES


def external_entries(t: TensorProto) -> dict:
    return {e.key: e.value for e in t.external_data}


def read_bytes(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def external_tensors(model, pack_dir: Path):
    """Each externally stored initializer of `model` with where its bytes are and the bytes: (tensor, (data file,
    offset, length), bytes)."""
    for t in model.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        e = external_entries(t)
        where = (e["location"], int(e.get("offset", 0)), int(e["length"]))
        yield t, where, read_bytes(pack_dir / where[0], where[1], where[2])


def donor_index(pack_dir: Path, graphs: list[str]) -> dict[str, tuple[str, int, int]]:
    """sha256 of each externally stored tensor of `graphs` → (data file, offset, length)."""
    index = {}
    for graph in graphs:
        model = onnx.load(str(pack_dir / graph), load_external_data=False)
        for _, where, data in external_tensors(model, pack_dir):
            index.setdefault(hashlib.sha256(data).hexdigest(), where)
    return index


def share_weights(path: Path, own_data: str, donors: list[str]) -> dict:
    """Rewrites the graph at `path` (all its tensors in `own_data`, beside it) to read the donors' data files where
    the bytes match, the rest inline; removes `own_data`. Returns {"shared": bytes, "inline": bytes}."""
    pack_dir = path.parent
    index = donor_index(pack_dir, donors)
    model = onnx.load(str(path), load_external_data=False)
    shared = inline = 0
    for t, (_, _, length), data in external_tensors(model, pack_dir):
        del t.external_data[:]
        found = index.get(hashlib.sha256(data).hexdigest())
        if found is None:
            t.data_location = TensorProto.DEFAULT
            t.raw_data = data
            inline += length
            continue
        shared += length
        for key, value in zip(("location", "offset", "length"), (found[0], str(found[1]), str(found[2]))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    if inline > INLINE_LIMIT_BYTES:
        raise Unsupported(f"the decode_steps graph holds {inline} bytes no other graph stores externally (export "
                          "with --external-data always so that it can share the segments' weights)")
    onnx.save_model(model, str(path))
    (pack_dir / own_data).unlink()
    return {"shared": shared, "inline": inline}
