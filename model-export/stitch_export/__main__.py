"""python -m stitch_export --checkpoint DIR --role small|large --out PACKDIR [--split-layers 1,2] [--name N]
[--version V] [--external-data auto|always|never] [--source TEXT] [--dtype float32|float16|int8|int4]
[--block-size 32] [--piece-mb 2048] [--cases N] [--decode-steps K]"""

import argparse
import sys

from .family import Unsupported
from .pack import DEFAULT_PIECE_MB, EXTERNAL_DATA, export_pack
from .verify import VerificationError
from .weights import DEFAULT_BLOCK_SIZE, REFUSED, WEIGHT_TYPES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="stitch_export", description="Export a transformers checkpoint as a Stitch model pack.")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--role", required=True, choices=["small", "large"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--split-layers", default="", help="comma-separated layers the engine may prune at")
    parser.add_argument("--name")
    parser.add_argument("--version")
    parser.add_argument("--external-data", default="auto", choices=EXTERNAL_DATA)
    parser.add_argument("--source", help="where the checkpoint came from, for the provenance (default: its path)")
    # bfloat16 is accepted here so that it is refused with its reason (weights.REFUSED), not as an unknown choice.
    parser.add_argument("--dtype", default="float32", choices=[*WEIGHT_TYPES, *REFUSED],
                        help="the pack's weight type (see stitch_export/weights.py)")
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE,
                        help="int8/int4: weights per quantization block (embedding tables; int4 matrices)")
    parser.add_argument("--piece-mb", type=int, default=DEFAULT_PIECE_MB,
                        help="decoder layers are traced and converted this many float32 MB at a time (at least one "
                             "layer): the export's memory is bounded by a piece, not by the model")
    parser.add_argument("--cases", type=int, default=None,
                        help="verify on the family's first N conformance cases only (default: all; at real sizes "
                             "each case costs minutes on a CPU, every check stays)")
    parser.add_argument("--decode-steps", type=int, default=None, metavar="K",
                        help="also write decode-steps.onnx: K greedy decode steps in one graph run (GPUs: the KV "
                             "cache crosses to the host once per K tokens); 1-D RoPE decoders only")
    args = parser.parse_args(argv)
    try:
        split = [int(k) for k in args.split_layers.split(",") if k.strip()]
    except ValueError:
        parser.error(f"--split-layers {args.split_layers!r}: comma-separated integers")
    try:
        export_pack(args.checkpoint, args.role, args.out, split, args.name, args.version, args.external_data,
                    args.source, dtype=args.dtype, block_size=args.block_size, piece_mb=args.piece_mb, cases=args.cases,
                    decode_steps=args.decode_steps)
    except Unsupported as e:
        print(f"stitch_export: unsupported: {e}", file=sys.stderr)
        return 2
    except VerificationError as e:
        print(f"stitch_export: verification failed: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
