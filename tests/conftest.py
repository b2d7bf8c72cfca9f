"""Shared test setup: the data mirror for the real-data loaders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# The repository lives at <root>/main and the mirror at <root>/shared/data (CI lays it out the same).
MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def plural_kit_data_home():
    """Point ``PLURAL_KIT_DATA_HOME`` at the mirror unless it is already set; yield the path."""
    if os.environ.get("PLURAL_KIT_DATA_HOME"):
        yield Path(os.environ["PLURAL_KIT_DATA_HOME"])
        return
    if not MIRROR.is_dir():
        pytest.fail(
            f"the data mirror {MIRROR} does not exist: clone the repository next to a copy of "
            "shared/ (<root>/main and <root>/shared/data) or set PLURAL_KIT_DATA_HOME"
        )
    os.environ["PLURAL_KIT_DATA_HOME"] = str(MIRROR)
    try:
        yield MIRROR
    finally:
        os.environ.pop("PLURAL_KIT_DATA_HOME", None)
