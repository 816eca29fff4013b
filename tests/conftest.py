"""Shared test fixtures: where the reference vectors live, and Qt offscreen by default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
XTC2_VECTORS = SHARED / "testdata" / "xtc2"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The folder of reference XTC2 files; skips the test in a clone without ../shared."""
    if not XTC2_VECTORS.is_dir():
        pytest.skip(f"reference vectors not found at {XTC2_VECTORS} (../shared is absent)")
    return XTC2_VECTORS
