"""Export one role of a pair: graphs, tokenizer, fixture, manifest — then verify the pack against transformers."""

import datetime
import gc
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import onnx
import onnxruntime
import torch
import transformers

from . import EXPORTER_VERSION, PACK_FORMAT, decode_steps_check
from .decode_steps import DecodeStepsGraph, check_decode_steps, dedupe, untie
from .decoder import EmbedGraph, SegmentGraph, check_text_config, decoder_manifest
from .families import family_for
from .family import Unsupported
from .lazy_model import LazyModel
from .onnx_io import INLINE_LIMIT_BYTES, OPSET, export_graph, sha256, trim_memory
from .pieces import chain, layers_per_piece, piece_bounds
from .runtime import PackRunner
from .shared_weights import share_weights
from .verify import MAX_TOKENS, VerificationError, Verifier
from .weights import DEFAULT_BLOCK_SIZE, check_weight_type, convert, weights_manifest

# Where the engine prunes for the fixture's pruned run, and how much it keeps: the small model re-reads at layer 0
# (consistency check), the large prunes at its first split layer.
PRUNE_PLAN = {"small": (None, 0.05), "large": ("first_split", 0.35)}
EXTERNAL_DATA = ("auto", "always", "never")
# Decoder layers are traced and converted this many float32 megabytes at a time (the export's peak memory is a
# few times this, plus the largest single piece: the embedding table or lm_head with the last layer).
DEFAULT_PIECE_MB = 2048


def weights_digest(checkpoint: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(checkpoint.glob("*.safetensors")):
        digest.update(sha256(path).encode())
    return digest.hexdigest()


def segments_of(layers: int, split_layers: list[int]) -> list[tuple[int, int]]:
    if sorted(set(split_layers)) != list(split_layers) or any(not 0 < k < layers for k in split_layers):
        raise Unsupported(f"split_layers {split_layers} must be increasing and inside 1..{layers - 1}")
    bounds = [0, *split_layers, layers]
    return list(zip(bounds[:-1], bounds[1:]))


def export_pack(checkpoint: Path, role: str, out: Path, split_layers: list[int], name: str | None = None,
                version: str | None = None, external_data: str = "auto", source: str | None = None,
                log=print, dtype: str = "float32", block_size: int = DEFAULT_BLOCK_SIZE,
                piece_mb: int = DEFAULT_PIECE_MB, cases: int | None = None, decode_steps: int | None = None) -> dict:
    checkpoint, out = Path(checkpoint), Path(out)
    if role not in PRUNE_PLAN:
        raise Unsupported(f"role {role!r} (small or large)")
    if external_data not in EXTERNAL_DATA:
        raise Unsupported(f"external data {external_data!r} (one of {EXTERNAL_DATA})")
    check_weight_type(dtype, block_size)
    if cases is not None and cases < 1:
        raise Unsupported(f"--cases {cases}: at least one conformance case")
    to_type = lambda graph: convert(graph, dtype, block_size)
    family = family_for(checkpoint)
    cfg = family.text_config
    check_text_config(cfg)
    segments = segments_of(cfg.num_hidden_layers, split_layers)
    if decode_steps is not None:
        check_decode_steps(cfg, decode_steps)
    prune_at, fraction = PRUNE_PLAN[role]
    if prune_at == "first_split" and not split_layers:
        raise Unsupported("a large pack needs split_layers (the layers the engine prunes at)")
    prune_layer = split_layers[0] if prune_at == "first_split" else 0

    lazy = LazyModel(family)
    decoder, lm_head = family.language_model(lazy.model)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    log(f"exporting {checkpoint} ({role}, {dtype} weights) to {out}, one piece at a time")
    vision_parts = lazy.outside(decoder, lm_head)
    with lazy.loaded(*vision_parts), lazy.detached(decoder, lm_head):
        vision, sample = family.vision_graph(lazy.model)
        vision_inputs, vision_axes = family.vision_io()
        files += export_graph(vision, sample if isinstance(sample, tuple) else (sample,), out / "vision.onnx",
                              vision_inputs, ["visual_embeds"], vision_axes, external_data, to_type,
                              release=lambda: lazy.release(*vision_parts))
    with lazy.loaded(decoder.embed_tokens):
        files += export_graph(EmbedGraph(decoder.embed_tokens), (torch.tensor([[1, 2, 3]]),), out / "embed.onnx",
                              ["input_ids"], ["inputs_embeds"], {"input_ids": {1: "T"}, "inputs_embeds": {1: "T"}},
                              external_data, to_type, release=lambda: lazy.release(decoder.embed_tokens))
    layer_bytes = 4 * sum(p.numel() for p in decoder.layers[0].parameters())
    per_piece = layers_per_piece(layer_bytes, piece_mb << 20)
    segment_entries = []
    for first, end in segments:
        file = f"decoder-{first}-{end}.onnx"
        files += export_segment(lazy, cfg, decoder, lm_head, (first, end), per_piece, out / file, external_data,
                                to_type, log)
        segment_entries.append({"file": file, "first_layer": first, "end_layer": end})
    graphs_extra = {}
    if decode_steps is not None:
        file = "decode-steps.onnx"
        files.append(export_decode_steps(lazy, cfg, decoder, lm_head, segments, decode_steps, out / file,
                                         ["embed.onnx", *(s["file"] for s in segment_entries)], to_type,
                                         dtype in ("int8", "int4"), log))
        graphs_extra["decode_steps"] = {"file": file, "steps": decode_steps}
    shutil.copyfile(family.tokenizer_file(), out / "tokenizer.json")

    digest = weights_digest(checkpoint)
    manifest = {
        "format": PACK_FORMAT, "family": family.family, "role": role,
        "name": name or checkpoint.name, "version": version or f"{EXPORTER_VERSION}+{digest[:8]}",
        "image": family.image_recipe(), "prompt": family.prompt_recipe(), "decoder": decoder_manifest(cfg),
        "vision": family.vision_info(), "weights": weights_manifest(dtype, block_size),
        "split_layers": list(split_layers),
        "graphs": {"vision": "vision.onnx", "embed": "embed.onnx", "segments": segment_entries,
                   "external_data": [f for f in files if f.endswith(".data")]} | graphs_extra,
    }

    log("verifying against transformers (eager), layer by layer")
    verifier = Verifier(family, lazy, manifest, (prune_layer, fraction), log)
    runner = PackRunner(out, manifest)
    runs = [verifier.run_pack(runner, case) for case in family.cases()[:cases]]
    if decode_steps is not None:
        log("verifying decode_steps against the segment graphs' single steps")
        try:
            verifier.figures["decode_steps"] = decode_steps_check.compare(runner, out, manifest)
        except decode_steps_check.DecodeStepsMismatch as e:
            raise VerificationError(str(e)) from e
    # onnxruntime's copy of the weights goes before transformers reads its layers (at real sizes both would not fit).
    del runner
    trim_memory()
    fixture_cases = verifier.compare(runs)
    tolerance = verifier.tolerances()
    fixture = {"max_tokens": MAX_TOKENS, "tolerance": tolerance, "cases": fixture_cases}
    if dtype != "float32":
        fixture["onnxruntime_tolerance"] = verifier.onnxruntime_tolerance()
    (out / "fixture.json").write_text(json.dumps(fixture, separators=(",", ":")))

    listed = files + ["tokenizer.json", "fixture.json"]
    manifest |= {
        "checksums": {f: sha256(out / f) for f in listed},
        "conformance": {"fixture": "fixture.json", "tolerance": tolerance},
        "provenance": {
            "source_checkpoint": source or str(checkpoint.resolve()), "checkpoint_name": checkpoint.name,
            "architecture": family.config_json["architectures"][0], "weights_sha256": digest,
            "transformers": transformers.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "opset": OPSET, "exporter": f"stitch_export {EXPORTER_VERSION}",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "verification": verifier.figures,
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"verified: {json.dumps(verifier.figures)}; tolerance {tolerance}")
    return manifest


def export_segment(lazy: LazyModel, cfg, decoder, lm_head, bounds: tuple[int, int], per_piece: int, path: Path,
                   external_data: str, to_type, log) -> list[str]:
    """Layers [first, end) traced `per_piece` layers at a time (each piece's weights loaded, traced, converted,
    written and released), then chained into `path`; returns the pack files written."""
    first, end = bounds
    last = end == cfg.num_hidden_layers
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        pieces = []
        for a, b in piece_bounds(first, end, per_piece):
            modules = [*decoder.layers[a:b], *([decoder.norm, lm_head] if last and b == end else [])]
            with lazy.loaded(*modules):
                graph = SegmentGraph(cfg, decoder, lm_head, a, b).eval()
                piece = Path(tmp) / f"piece-{a}-{b}.onnx"
                export_graph(graph, graph.sample_inputs(), piece, graph.input_names(), graph.output_names(),
                             graph.dynamic_axes(), "always", to_type, release=lambda: lazy.release(*modules))
                del graph
                pieces.append(piece)
            log(f"  layers {a}-{b} exported")
        data = f"{path.name}.data"
        chain(pieces, path, data)
    weights = (path.parent / data).stat().st_size
    if external_data == "always" or (external_data == "auto" and weights > INLINE_LIMIT_BYTES):
        return [path.name, data]
    onnx.save_model(onnx.load(str(path)), str(path))  # small enough to carry its weights inline
    (path.parent / data).unlink()
    return [path.name]


def export_decode_steps(lazy: LazyModel, cfg, decoder, lm_head, segments, steps: int, path: Path, donors: list[str],
                        to_type, quantized: bool, log) -> str:
    """The decode_steps graph (decode_steps.py), its weights read from the donors' data files where they hold
    them (shared_weights.py). Traced whole: at real sizes this needs the whole decoder in memory once. Quantized
    types get each weight use its own copy while they are applied (decode_steps.untie), merged back after."""
    convert = (lambda model: dedupe(to_type(untie(model)))) if quantized else to_type
    modules = [decoder.embed_tokens, *decoder.layers, decoder.norm, lm_head]
    with lazy.loaded(*modules):
        graph = DecodeStepsGraph(cfg, decoder, lm_head, segments, steps).eval()
        export_graph(graph, graph.sample_inputs(), path, graph.input_names(), graph.output_names(),
                     graph.dynamic_axes(), "always", convert,
                     release=lambda: lazy.release(*modules))
        del graph
    sizes = share_weights(path, f"{path.name}.data", donors)
    log(f"  decode_steps ({steps} steps) exported: {sizes['shared']} bytes read from the segments' data, "
        f"{sizes['inline']} inline")
    return path.name
