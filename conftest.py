"""Shared test setup (unit tests and notebooks): the data mirror for the real-data loaders.

``PLURAL_KIT_DATA_HOME`` is set at start-up, before any notebook kernel is launched, so
kernels started by nbval and papermill inherit it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# The repository lives at <root>/<checkout> and the mirror at <root>/shared/data (CI lays it out the same).
MIRROR = Path(__file__).resolve().parent.parent / "shared" / "data"


def pytest_configure(config):
    if os.environ.get("PLURAL_KIT_DATA_HOME"):
        return
    if not MIRROR.is_dir():
        raise pytest.UsageError(
            f"the data mirror {MIRROR} does not exist: clone the repository next to a copy of "
            "shared/ (<root>/<checkout> and <root>/shared/data) or set PLURAL_KIT_DATA_HOME"
        )
    os.environ["PLURAL_KIT_DATA_HOME"] = str(MIRROR)


@pytest.fixture(scope="session")
def plural_kit_data_home() -> Path:
    """The data home the tests read (the mirror unless ``PLURAL_KIT_DATA_HOME`` was set)."""
    return Path(os.environ["PLURAL_KIT_DATA_HOME"])
