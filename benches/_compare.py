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


def _time_both(
    benchmark: Any,
    main: Callable[[], Any],
    other: Callable[[], Any],
    rounds: int,
    other_rounds: int,
) -> tuple[float, float, bool]:
    """Median seconds of ``main`` (through pytest-benchmark) and ``other``
    (timed here); one run each when benchmarks are disabled."""
    enabled = not getattr(benchmark, "disabled", False)
    if enabled:
        benchmark.pedantic(main, rounds=rounds, iterations=1, warmup_rounds=1)
        return float(benchmark.stats.stats.median), _median_seconds(other, other_rounds), True
    main_s, other_s = _median_seconds(main, 1), _median_seconds(other, 1)
    benchmark(lambda: None)
    return main_s, other_s, False


def record_result(benchmark: Any, record: dict[str, Any]) -> dict[str, Any]:
    benchmark.extra_info.update(record)
    RESULTS.append(record)
    return record


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
    fast_s, ref_s, enabled = _time_both(benchmark, fast, reference, rounds, reference_rounds)
    return record_result(
        benchmark,
        {
            "name": name,
            "unit": unit,
            "items": items,
            "rust_median_s": fast_s,
            "reference_median_s": ref_s,
            "rust_items_per_s": items / fast_s,
            "reference_items_per_s": items / ref_s,
            "ratio": ref_s / fast_s,
            "measured": enabled,
        },
    )


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
    real_s, peak_s, enabled = _time_both(benchmark, real, peak, rounds, rounds)
    return record_result(
        benchmark,
        {
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
        },
    )


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
    return record_result(benchmark, record)
