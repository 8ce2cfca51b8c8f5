"""Timing a Rust path against the numpy reference it replaces (or a sampler
against uniform sampling), in one run.

With ``--benchmark-enable`` pytest-benchmark measures the fast path
(median of its rounds) and the reference is timed here the same way; in
normal test runs (benchmarks disabled) each runs once, so the numbers are a
smoke test, not a measurement. Either way the result lands in
``benchmark.extra_info`` (items per second, ratio) and in the session's
summary table.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

RESULTS: list[dict[str, Any]] = []


def _median_seconds(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def compare(
    benchmark: Any,
    name: str,
    fast: Callable[[], Any],
    reference: Callable[[], Any],
    items: float,
    unit: str,
    *,
    rounds: int = 7,
    reference_rounds: int = 3,
) -> dict[str, Any]:
    """Measures ``fast`` and ``reference`` on the same job of ``items``
    ``unit``; returns (and records) medians, throughput and their ratio."""
    enabled = not getattr(benchmark, "disabled", False)
    if enabled:
        benchmark.pedantic(fast, rounds=rounds, iterations=1, warmup_rounds=1)
        fast_s = float(benchmark.stats.stats.median)
        ref_s = _median_seconds(reference, reference_rounds)
    else:
        fast_s = _median_seconds(fast, 1)
        ref_s = _median_seconds(reference, 1)
        benchmark(lambda: None)
    record = {
        "name": name,
        "unit": unit,
        "items": items,
        "rust_median_s": fast_s,
        "reference_median_s": ref_s,
        "rust_items_per_s": items / fast_s,
        "reference_items_per_s": items / ref_s,
        "ratio": ref_s / fast_s,
        "measured": enabled,
    }
    benchmark.extra_info.update(record)
    RESULTS.append(record)
    return record


def fraction_of_peak(
    benchmark: Any,
    name: str,
    real: Callable[[], Any],
    real_items: float,
    peak: Callable[[], Any],
    peak_items: float,
    unit: str,
    *,
    rounds: int = 7,
) -> dict[str, Any]:
    """Throughput of ``real`` as a fraction of ``peak``, the same arithmetic
    on data that stays in the L1 cache (the machine's ceiling for it)."""
    enabled = not getattr(benchmark, "disabled", False)
    if enabled:
        benchmark.pedantic(real, rounds=rounds, iterations=1, warmup_rounds=1)
        real_s = float(benchmark.stats.stats.median)
        peak_s = _median_seconds(peak, rounds)
    else:
        real_s = _median_seconds(real, 1)
        peak_s = _median_seconds(peak, 1)
        benchmark(lambda: None)
    record = {
        "name": name,
        "unit": unit,
        "items": real_items,
        "rust_median_s": real_s,
        "reference_median_s": peak_s * real_items / peak_items,
        "rust_items_per_s": real_items / real_s,
        "reference_items_per_s": peak_items / peak_s,
        "ratio": (real_items / real_s) / (peak_items / peak_s),
        "measured": enabled,
        "kind": "fraction of peak",
    }
    benchmark.extra_info.update(record)
    RESULTS.append(record)
    return record


def compare_interleaved(
    benchmark: Any,
    name: str,
    target: Callable[[], Any],
    reference: Callable[[], Any],
    items: float,
    unit: str,
    *,
    rounds: int = 5,
    warmup_rounds: int = 1,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Like ``compare``, for jobs long enough that the machine's load drifts
    between them: ``reference`` and ``target`` alternate round by round (the
    reference runs as pytest-benchmark's untimed setup), so both meet the
    same conditions. Medians of each's own rounds; warm-up rounds (both
    jobs) are not counted. ``extra()`` adds its values to the record."""
    enabled = not getattr(benchmark, "disabled", False)
    times: dict[str, list[float]] = {"target": [], "reference": []}

    def timed(key: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            t = time.perf_counter()
            out = fn()
            times[key].append(time.perf_counter() - t)
            return out

        return run

    warm = warmup_rounds if enabled else 0
    benchmark.pedantic(
        timed("target", target),
        setup=timed("reference", reference),
        rounds=rounds if enabled else 1,
        warmup_rounds=warm,
        iterations=1,
    )
    fast_s = statistics.median(times["target"][warm:])
    ref_s = statistics.median(times["reference"][warm:])
    record = {
        "name": name,
        "unit": unit,
        "items": items,
        "rust_median_s": fast_s,
        "reference_median_s": ref_s,
        "rust_items_per_s": items / fast_s,
        "reference_items_per_s": items / ref_s,
        "ratio": ref_s / fast_s,
        "measured": enabled,
        "rounds": len(times["target"]) - warm,
    }
    if extra is not None:
        record.update(extra())
    benchmark.extra_info.update(record)
    RESULTS.append(record)
    return record
