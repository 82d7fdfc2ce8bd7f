"""Stitch's exporter: a transformers checkpoint → a model pack (ONNX graphs + manifest, contract v2)."""

EXPORTER_VERSION = "0.1.0"
PACK_FORMAT = "stitch-model-pack/2"
