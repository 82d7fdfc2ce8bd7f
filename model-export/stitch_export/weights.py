"""A pack's weight type: each float32 graph the exporter traced is rewritten to it before it is saved.

- float32: unchanged.
- float16: every float op in float16, with float32 kept where precision decides (transformers does the same in its
  half-precision forward): Softmax, the attention sums SGP and FastV read (Softmax → attention_received /
  attention_last), the rotary angles (positions × frequencies → Cos/Sin) and RMSNorm's statistics. Inputs and
  outputs stay float32 (casts inside the graph), so the engine feeds and reads the same tensors for every type.
- int8: weights of every MatMul with a constant weight in signed 8-bit storage holding 7-bit values (see
  quantize_dynamic_int8), one scale per output column; onnxruntime quantizes the activations per call (dynamic
  int8 MatMul: DynamicQuantizeMatMul / MatMulIntegerToFloat on the CPU, whose integer kernels use VNNI/AMX where
  the CPU has them). The embedding table: GatherBlockQuantized, 8 bits.
- int4: MatMulNBits, 4-bit weights in blocks of `block_size` along the input dimension (a scale and zero point
  per block), accuracy_level 4 (int8 products on the CPU, as onnxruntime-genai builds its CPU int4 models); the
  embedding table: GatherBlockQuantized, 4 bits.
Softmax and SGP's sums are float32 in every type (in int8/int4 all activations are float32).
- bfloat16: refused. onnxruntime's CPU execution provider has no bfloat16 kernel for MatMul, Add, Mul, Softmax,
  Sigmoid, Div, Sqrt, Pow or Erf (NOT_IMPLEMENTED at session creation, checked with onnxruntime 1.23.2), so a
  bfloat16 pack could be neither verified here nor served by the CPU provider.
"""

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .family import Unsupported

WEIGHT_TYPES = ("float32", "float16", "int8", "int4")
REFUSED = {"bfloat16": "onnxruntime's CPU execution provider has no bfloat16 kernels (MatMul, Add, Softmax … are "
                       "NOT_IMPLEMENTED), so the pack could not be verified against transformers nor served on the "
                       "CPU; use float16 for GPUs"}
DEFAULT_BLOCK_SIZE = 32


def check_weight_type(dtype: str, block_size: int) -> None:
    if dtype in REFUSED:
        raise Unsupported(f"weight type {dtype}: {REFUSED[dtype]}")
    if dtype not in WEIGHT_TYPES:
        raise Unsupported(f"weight type {dtype!r} (one of {', '.join(WEIGHT_TYPES)})")
    # GatherBlockQuantized wants a power of two ≥ 16; MatMulNBits any multiple of 16.
    if block_size < 16 or block_size & (block_size - 1):
        raise Unsupported(f"block size {block_size}: a power of two ≥ 16")


def weights_manifest(dtype: str, block_size: int) -> dict:
    return {"dtype": dtype} | ({"block_size": block_size} if dtype in ("int8", "int4") else {})


def convert(model: onnx.ModelProto, dtype: str, block_size: int = DEFAULT_BLOCK_SIZE) -> onnx.ModelProto:
    if dtype == "float32":
        return model
    if dtype == "float16":
        return to_float16(model)
    model = quantize_gathers(model, bits=8 if dtype == "int8" else 4, block_size=block_size)
    return quantize_dynamic_int8(model) if dtype == "int8" else quantize_matmul_nbits(model, block_size)


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    keep = float32_nodes(model)
    model = convert_float_to_float16(with_shapes(model), keep_io_types=True, node_block_list=sorted(keep),
                                     op_block_list=["Softmax"], disable_shape_infer=True)
    # onnxruntime 1.30's converter inserts the same Cast (same input, same output name) once per float32 consumer
    # of a float16 tensor: keep one of each.
    defined, nodes = set(), []
    for n in model.graph.node:
        if n.op_type == "Cast" and n.output[0] in defined:
            continue
        defined.update(n.output)
        nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_float16_round_trips(model)
    return model


def with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with inferred value types (the float16 converter needs them to place its casts). Through a file:
    onnx's in-memory inference refuses models of 2 GiB or more, real decoder segments among them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save_model(model, str(path), save_as_external_data=True, location="model.onnx.data")
        onnx.shape_inference.infer_shapes_path(str(path), str(path))
        return onnx.load(str(path))


def drop_float16_round_trips(model: onnx.ModelProto) -> None:
    """float32 → float16 → float32 casts between float32 nodes (the converter puts them before each graph output,
    SGP's sums included) lose precision for nothing: the second cast becomes an Identity of the float32 value."""
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.input]}
    types |= {t.name: t.data_type for t in model.graph.initializer}
    to = lambda n: next(a.i for a in n.attribute if a.name == "to")
    producer = {o: n for n in model.graph.node for o in n.output}
    for i, n in enumerate(model.graph.node):
        first = producer.get(n.input[0]) if n.op_type == "Cast" and to(n) == TensorProto.FLOAT else None
        if first is not None and first.op_type == "Cast" and to(first) == TensorProto.FLOAT16 \
                and types.get(first.input[0]) == TensorProto.FLOAT:
            model.graph.node[i].CopyFrom(helper.make_node("Identity", [first.input[0]], list(n.output), name=n.name))
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    live = [n for n in model.graph.node if any(o in used for o in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(live)


def float32_nodes(model: onnx.ModelProto) -> set[str]:
    """Names of the nodes that stay float32 in a float16 graph (unnamed nodes are named first)."""
    nodes = list(model.graph.node)
    for i, n in enumerate(nodes):
        n.name = n.name or f"stitch_node_{i}"
    producer = {o: n for n in nodes for o in n.output}
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    keep: set[str] = set()
    # SGP's and FastV's sums (and SEE's probabilities): everything between a Softmax and those outputs.
    # decode_steps: attention_received_<first> per segment, and the chosen tokens' probabilities.
    stack = [o.name for o in model.graph.output
             if o.name.startswith("attention_received") or o.name in ("attention_last", "probabilities")]
    while stack:
        n = producer.get(stack.pop())
        # ArgMax: the token index a probability is gathered at (decode_steps) comes from the logits, which stay in
        # the pack's type as the segments' do; walking through it would keep the whole network float32.
        if n is None or n.name in keep or n.op_type in ("Softmax", "ArgMax"):
            continue
        keep.add(n.name)
        stack += list(n.input)
    # Rotary angles: everything a Cos or Sin reads (positions × inverse frequencies lose whole positions in
    # float16 beyond 2048, and the angles reach thousands of radians).
    stack = [i for n in nodes if n.op_type in ("Cos", "Sin") for i in n.input]
    keep |= {n.name for n in nodes if n.op_type in ("Cos", "Sin")}
    while stack:
        n = producer.get(stack.pop())
        if n is None or n.name in keep:
            continue
        keep.add(n.name)
        stack += list(n.input)
    # RMSNorm's mean of squares overflows float16 on real activations: Pow → ReduceMean → Add → Sqrt → (1/x) → Mul.
    for n in nodes:
        if n.op_type != "ReduceMean" or n.input[0] not in producer or producer[n.input[0]].op_type != "Pow":
            continue
        keep |= {n.name, producer[n.input[0]].name}
        node = n
        while len(consumers.get(node.output[0], [])) == 1:
            node = consumers[node.output[0]][0]
            keep.add(node.name)
            if node.op_type == "Mul":
                break
    return keep


def quantize_gathers(model: onnx.ModelProto, bits: int, block_size: int) -> onnx.ModelProto:
    """Embedding tables (Gather on a float initializer along axis 0) → GatherBlockQuantized, asymmetric, blocks along
    the hidden dimension. Hand-written: onnxruntime's quantizer writes only the 4-bit form."""
    inits = {t.name: t for t in model.graph.initializer}
    for i, node in enumerate(model.graph.node):
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if table is None or table.data_type != TensorProto.FLOAT or len(table.dims) != 2 or axis != 0:
            continue
        w = numpy_helper.to_array(table)
        rows, cols = w.shape
        if cols % block_size:
            raise Unsupported(f"embedding width {cols} is not a multiple of the block size {block_size}")
        levels = (1 << bits) - 1
        blocks = w.reshape(rows, cols // block_size, block_size)
        low, high = np.minimum(blocks.min(-1), 0), np.maximum(blocks.max(-1), 0)
        scale = np.where(high > low, (high - low) / levels, 1.0).astype(np.float32)
        zero = np.clip(np.round(-low / scale), 0, levels).astype(np.uint8)
        q = np.clip(np.round(blocks / scale[..., None]) + zero[..., None], 0, levels).astype(np.uint8).reshape(rows, cols)
        if bits == 4:  # two values a byte, low nibble first; zero points likewise
            q = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)
            z = zero.reshape(-1)
            z = np.concatenate([z, np.zeros(len(z) % 2, np.uint8)])
            zero = (z[0::2] | (z[1::2] << 4)).astype(np.uint8)
        name = table.name
        data = numpy_helper.from_array(q, f"{name}_q{bits}")
        if bits == 4:  # GatherBlockQuantized's 4-bit data is typed uint4 ([rows, cols]); the bytes are the packing
            data = helper.make_tensor(f"{name}_q4", TensorProto.UINT4, [rows, cols], q.tobytes(), raw=True)
            zero_t = helper.make_tensor(f"{name}_zp4", TensorProto.UINT4, list(scale.shape), zero.tobytes(), raw=True)
        else:
            zero_t = numpy_helper.from_array(zero, f"{name}_zp8")
        model.graph.initializer.extend([data, numpy_helper.from_array(scale, f"{name}_scales"), zero_t])
        model.graph.node[i].CopyFrom(helper.make_node(
            "GatherBlockQuantized", [data.name, node.input[1], f"{name}_scales", zero_t.name], list(node.output),
            name=node.name or f"gather_q{bits}_{i}", domain="com.microsoft", bits=bits, block_size=block_size,
            gather_axis=0, quantize_axis=1))
    drop_unused_initializers(model)
    return with_ms_domain(model)


def quantize_matmul_nbits(model: onnx.ModelProto, block_size: int) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    quiet()
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=False, accuracy_level=4, bits=4)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    return quantizer.model.model


def quantize_dynamic_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 graph of `model`; `model` itself is emptied of its weights on the way."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet()
    # Signed weights in 7 bits (reduce_range): u8 activations · s8 weights is the form onnxruntime 1.30's fast
    # integer kernels take (VNNI/AMX; u8·u8 ran 3-8x slower here), and CPUs without VNNI add u8·s8 pairs into a
    # saturating 16-bit sum (vpmaddubsw): with 7-bit weights no pair can saturate, so every CPU computes the same
    # integers.
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(model, str(src), save_as_external_data=True, location="in.onnx.data")
        # The float weights are on disk now: freed here (the graph given is emptied), so that the quantizer's own
        # copies are the only ones in memory (at real sizes a segment's weights are gigabytes).
        del model.graph.initializer[:]
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, use_external_data_format=True)
        return onnx.load(str(dst))


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    """In place, by index: copying the kept tensors into a new list would serialise each one, which protobuf
    refuses for a tensor of 2 GiB or more (an 8B model's embedding table)."""
    used = {i for n in model.graph.node for i in n.input}
    for i in reversed(range(len(model.graph.initializer))):
        if model.graph.initializer[i].name not in used:
            del model.graph.initializer[i]


def with_ms_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def quiet() -> None:
    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
