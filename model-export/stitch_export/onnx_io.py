"""Writing graphs (TorchScript exporter, opset 17) with or without ONNX external data, and checksums."""

import ctypes
import gc
import hashlib
import math
import tempfile
import warnings
from pathlib import Path

import onnx
import torch

OPSET = 17
# Protobuf cannot serialise a model of 2 GiB or more; stay clear of it.
INLINE_LIMIT_BYTES = 1_800_000_000


def export_graph(module, args: tuple, path: Path, input_names, output_names, dynamic_axes, external: str,
                 convert=lambda model: model, release=lambda: None) -> list[str]:
    """Export `module` to `path`; returns the pack file names written (the graph, then its external data if any).
    external: "always", "never" or "auto" (external when the exported graph exceeds INLINE_LIMIT_BYTES).
    convert: the pack's weight type applied to the traced float32 graph (weights.convert).
    release: drops the module's weights once traced, before the graph is loaded and converted: the traced copy,
    the loaded one and the converted one never sit beside the module's own."""
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes (sizes fixed by the recipe)
        raw = Path(tmp) / "graph.onnx"
        torch.onnx.export(module, args, str(raw), input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        release()
        trim_memory()
        model = convert(onnx.load(str(raw)))  # onnx.load also reads any external data torch wrote
    # Sized from the exported graph, not from module.state_dict(): a wrapper module may hold a whole model of
    # which the graph uses a part (InternVL's vision graph holds the language model too).
    use_external = external == "always" or (external == "auto" and initializer_bytes(model) > INLINE_LIMIT_BYTES)
    if not use_external:
        onnx.save_model(model, str(path))
        return [path.name]
    data = f"{path.name}.data"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data,
                    size_threshold=0)
    return [path.name, data]


def trim_memory() -> None:
    """Collect Python's garbage and hand glibc's free heap back to the system, so that the peak RSS of one piece
    does not carry into the next."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: nothing to trim
        pass


def initializer_bytes(model: onnx.ModelProto) -> int:
    """The graph's weights in bytes, from the shapes (ModelProto.ByteSize() itself fails beyond 2 GiB)."""
    return sum(tensor_bytes(t) for t in model.graph.initializer)


def tensor_bytes(t: onnx.TensorProto) -> int:
    if t.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):  # two to a byte
        return (math.prod(t.dims) + 1) // 2
    return math.prod(t.dims) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
