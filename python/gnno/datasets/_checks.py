"""Parameter checks for the dataset functions: each raises a ``GnnoError``
naming the parameter and the value it got."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gnno.exceptions import GnnoError, NonFiniteError


def check_int(value: Any, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise GnnoError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise GnnoError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed: Any) -> int:
    return check_int(seed, "seed", minimum=0)


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    high_open: bool = False,
    low_open: bool = False,
) -> float:
    if isinstance(value, bool):
        raise GnnoError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise GnnoError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise NonFiniteError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise GnnoError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")
    return v
