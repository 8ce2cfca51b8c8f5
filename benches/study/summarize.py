"""Numbers out of run records: means and spreads over seeds, paired
differences, false-negative rates, compute. Shared by the report, the
figures and the recipe search."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

#: The metric of ``runner.hidden_recovery`` the report compares.
RECOVERY_METRIC = "recall@20"


def stat(values: Iterable[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the
    finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def fmt(mean: float, spread: float, n: int, digits: int = 4, sign: bool = False) -> str:
    """``mean ± sd`` (``mean`` alone for one value, ``–`` for none)."""
    if n == 0 or not math.isfinite(mean):
        return "–"
    head = f"{mean:+.{digits}f}" if sign else f"{mean:.{digits}f}"
    return head if n == 1 else f"{head} ± {spread:.{digits}f}"


def fn_rate(run: dict[str, Any]) -> float | None:
    """The share of drawn negatives that were false negatives, over the
    epochs up to and including the best one (the model kept)."""
    last = (run.get("best_epoch") or 0) + 1
    rates = [h["false_negative_rate"] for h in run["history"][:last] if "false_negative_rate" in h]
    return float(np.mean(rates)) if rates else None


def paired(
    runs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]], metric: str
) -> dict[str, Any]:
    """Paired per-seed differences ``a − b`` of the test ``metric`` and of
    the false-negative rate over the pairs where both runs exist."""
    both = [(a, b) for a, b in runs if a is not None and b is not None]
    d_metric = [a["test"][metric] - b["test"][metric] for a, b in both]
    rel = [
        (a["test"][metric] - b["test"][metric]) / b["test"][metric]
        for a, b in both
        if b["test"][metric]
    ]
    # Recall of the hidden liked items (``runner.hidden_recovery``), where
    # both runs measured it.
    d_recovery = [
        a["recovery"][RECOVERY_METRIC] - b["recovery"][RECOVERY_METRIC]
        for a, b in both
        if a.get("recovery") and b.get("recovery")
    ]
    d_fn = []
    ratio = []
    for a, b in both:
        fa, fb = fn_rate(a), fn_rate(b)
        if fa is not None and fb is not None:
            d_fn.append(fa - fb)
            if fb > 0:
                ratio.append(fa / fb)
    return {
        "seeds": [a["seed"] for a, _ in both],
        "metric": d_metric,
        "relative": rel,
        "fn": d_fn,
        "fn_ratio": ratio,
        "recovery": d_recovery,
        "planned": len(runs),
    }


def outside_spread(diffs: list[float]) -> bool:
    """Whether every paired difference has the mean's sign (so the mean is
    outside the spread of the pairs around zero); needs two pairs."""
    return len(diffs) >= 2 and (all(d > 0 for d in diffs) or all(d < 0 for d in diffs))


def per_epoch(run: dict[str, Any], get: Any) -> np.ndarray:
    """``get(history record)`` for every epoch of ``run`` (NaN where missing)."""
    out = []
    for h in run["history"]:
        try:
            value = get(h)
        except (KeyError, TypeError, IndexError):
            value = None
        out.append(np.nan if value is None else float(value))
    return np.asarray(out)


def compute_summary(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Total wall and CPU hours, and the machines, threads and devices used."""
    records = list(records)
    comp = [r["compute"] for r in records if "compute" in r]
    return {
        "runs": len(records),
        "wall_hours": sum(c["wall_seconds"] for c in comp) / 3600,
        "cpu_hours": sum(c.get("cpu_seconds", 0.0) for c in comp) / 3600,
        "epochs": sum(r.get("epochs_run", len(r.get("history", []))) for r in records),
        "cpus": sorted({f"{c['cpu']} ({c['logical_cpus']} logical CPUs)" for c in comp}),
        "threads": sorted({f"torch {c['torch_threads']}, gnno {c['gnno_threads']}" for c in comp}),
        "devices": sorted({str(c["device"]) for c in comp}),
        "commits": sorted({c.get("commit", "") for c in comp} - {"", "unknown"}),
        "dates": sorted(c["finished"] for c in comp),
    }


__all__ = [
    "RECOVERY_METRIC",
    "stat",
    "fmt",
    "fn_rate",
    "paired",
    "outside_spread",
    "per_epoch",
    "compute_summary",
]
