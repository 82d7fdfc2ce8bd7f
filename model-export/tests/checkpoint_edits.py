"""A copy of a tiny checkpoint with its config.json edited: how the refusal tests feed the exporter a bad option."""

import json
import shutil
from pathlib import Path


def edited_checkpoint(checkpoints, tmp_path, edit) -> Path:
    target = tmp_path / "edited"
    shutil.copytree(checkpoints / "small", target)
    config = json.loads((target / "config.json").read_text())
    edit(config)
    (target / "config.json").write_text(json.dumps(config))
    return target
