"""One tiny pair, exported once per session: make_tiny → both roles (the large split at 1 and 2)."""

import sys
from pathlib import Path

import pytest

EXPORT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXPORT_DIR))

import make_tiny  # noqa: E402
from stitch_export.pack import export_pack  # noqa: E402


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("checkpoints")
    make_tiny.main_into(out)
    return out


@pytest.fixture(scope="session")
def packs(checkpoints, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("packs")
    return {
        role: (out / role, export_pack(checkpoints / role, role, out / role, split, log=lambda *a: None))
        for role, split in (("small", []), ("large", [1, 2]))
    }
