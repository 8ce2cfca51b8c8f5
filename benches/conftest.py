"""Benchmark fixtures: the shared datasets (skipped when absent) and a
summary table of Rust-vs-reference ratios at the end of the session."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from _machine import datasets_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = datasets_dir()
    if path is None:
        pytest.skip("shared datasets not found (set GNNO_DATA or add ../shared/datasets)")
    return path


@pytest.fixture(scope="session")
def ml1m_pairs(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The ML-1M NCF training pairs as int64 arrays (994,169 rows)."""
    with gzip.open(data_dir / "ml-1m-ncf" / "ml-1m.train.rating.gz", "rt") as f:
        raw = np.loadtxt(f, dtype=np.int64, usecols=(0, 1))
    return raw[:, 0].copy(), raw[:, 1].copy()


@pytest.fixture(scope="session")
def ml1m(ml1m_pairs):
    import gnno

    return gnno.Interactions.from_pairs(*ml1m_pairs)


@pytest.fixture(scope="session")
def gowalla(data_dir: Path):
    """Gowalla's LightGCN training split (29,858 x 40,981, 810,128 pairs)."""
    from gnno.datasets import load_lightgcn

    return load_lightgcn(data_dir / "gowalla")[0]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from _compare import RESULTS

    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("gnno: Rust against the reference it replaces")
    tr.write_line(f"{'benchmark':44s} {'rust (s)':>10s} {'ref (s)':>10s} {'ratio':>7s}  throughput")
    for r in RESULTS:
        note = "" if r["measured"] else "  (single run)"
        if r.get("kind") == "fraction of epoch":
            note = f"  (refresh = {1 / r['ratio']:.1%} of an epoch){note}"
        if r.get("kind") == "fraction of peak":
            note = f"  ({r['ratio']:.0%} of the measured peak){note}"
        tr.write_line(
            f"{r['name']:44s} {r['rust_median_s']:10.4f} {r['reference_median_s']:10.4f} "
            f"{r['ratio']:6.1f}x  {r['rust_items_per_s']:.3g} {r['unit']}/s{note}"
        )
