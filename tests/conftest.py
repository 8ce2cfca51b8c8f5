"""Shared fixtures. Real datasets live outside the repository, in
``../shared/datasets`` from the project root or where ``GNNO_DATA`` points;
tests that need them skip cleanly when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path | None:
    env = os.environ.get("GNNO_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "datasets"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = datasets_dir()
    if path is None:
        pytest.skip("shared datasets not found (set GNNO_DATA or add ../shared/datasets)")
    return path
