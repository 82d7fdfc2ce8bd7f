"""Run llama.cpp's convert_hf_to_gguf.py, naming the BPE pre-tokenizer when the converter does not recognise it.

The converter identifies a checkpoint's pre-tokenizer by hashing how it tokenizes a fixed text, and refuses one whose
hash is not in its table. A random-weight checkpoint (model-export/make_tiny_qwen25vl.py, make_real_size.py) carries a
small trained BPE whose hash no table holds, though its pre-tokenizer is Qwen2's. This wrapper leaves the vendored
converter untouched: it wraps TextModel.get_vocab_base_pre so that a recognised tokenizer keeps the converter's own
answer and only an unrecognised one gets `--pre` (logged). Tokenization does not change any timing.

Usage (the converter venv of bench/peers-build-llama-cpp.sh):
  venv/bin/python bench/peers_convert_gguf.py --llama-src SRC --pre qwen2 -- CHECKPOINT --outfile F.gguf [--mmproj] ...
"""

import argparse
import logging
import runpy
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-src", required=True, type=Path, help="llama.cpp's source tree")
    parser.add_argument("--pre", required=True, help="tokenizer.ggml.pre to write when the hash is unknown")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then convert_hf_to_gguf.py's own arguments")
    args = parser.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    src = args.llama_src.resolve()
    sys.path[:0] = [str(src), str(src / "gguf-py")]

    from conversion.base import TextModel  # the vendored converter's own module, the one it will import

    recognised = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return recognised(self, tokenizer)
        except NotImplementedError:
            logging.getLogger("peers_convert_gguf").warning("unrecognised tokenizer hash: writing pre-tokenizer %r",
                                                            args.pre)
            return args.pre

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(src / "convert_hf_to_gguf.py"), *rest]
    runpy.run_path(str(src / "convert_hf_to_gguf.py"), run_name="__main__")


if __name__ == "__main__":
    main()
