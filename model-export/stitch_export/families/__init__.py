"""The one map from a checkpoint's architectures[0] to its family class."""

import json
from pathlib import Path

from ..family import Family, Unsupported
from .internvl import InternVLFamily
from .qwen2_5_vl import Qwen25VLFamily

FAMILIES: dict[str, type[Family]] = {
    "InternVLForConditionalGeneration": InternVLFamily,
    "Qwen2_5_VLForConditionalGeneration": Qwen25VLFamily,
}


def family_for(checkpoint: Path) -> Family:
    config_path = Path(checkpoint) / "config.json"
    if not config_path.is_file():
        raise Unsupported(f"{checkpoint} is not a transformers checkpoint folder (no config.json)")
    config = json.loads(config_path.read_text())
    # transformers 4.57 saves Qwen2.5-VL's `architectures` inside text_config (its config delegates attributes to
    # the text config); Hub checkpoints have it at the top.
    architectures = config.get("architectures") or (config.get("text_config") or {}).get("architectures") or []
    if not architectures or architectures[0] not in FAMILIES:
        raise Unsupported(
            f"architecture {architectures[0] if architectures else None!r} is not supported "
            f"(supported: {', '.join(FAMILIES)})"
        )
    return FAMILIES[architectures[0]](checkpoint)
