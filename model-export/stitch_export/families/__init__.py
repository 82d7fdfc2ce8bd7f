"""The one map from a checkpoint's architectures[0] to its family class."""

import json
from pathlib import Path

from ..family import Family, Unsupported
from .internvl import InternVLFamily

FAMILIES: dict[str, type[Family]] = {
    "InternVLForConditionalGeneration": InternVLFamily,
}


def family_for(checkpoint: Path) -> Family:
    config_path = Path(checkpoint) / "config.json"
    if not config_path.is_file():
        raise Unsupported(f"{checkpoint} is not a transformers checkpoint folder (no config.json)")
    architectures = json.loads(config_path.read_text()).get("architectures") or []
    if not architectures or architectures[0] not in FAMILIES:
        raise Unsupported(
            f"architecture {architectures[0] if architectures else None!r} is not supported "
            f"(supported: {', '.join(FAMILIES)})"
        )
    return FAMILIES[architectures[0]](checkpoint)
