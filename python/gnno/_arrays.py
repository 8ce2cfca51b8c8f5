"""Input coercion shared by every public entry point.

Everything that reaches the compiled core passes through here: ids become
C-contiguous ``int64`` numpy arrays, scores ``float32``; torch tensors are
read (never written) from the CPU; bad dtypes, shapes and non-finite values
raise a ``gnno.exceptions`` error naming the argument. Inputs are never
modified: conversions copy when they have to, and the core only reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnno.exceptions import GnnoError, IdOutOfRangeError, NonFiniteError, ShapeError

#: The largest user or item id gnno stores (ids are 32-bit signed in the
#: core); ``n_users`` and ``n_items`` are at most ``MAX_ID + 1``.
MAX_ID = 2**31 - 1
#: The most negatives one ``sample`` call returns (``len(users) * k``), and
#: the cap on ``k`` itself.
MAX_DRAWS = 2**31 - 1
#: The cap on a per-user size option (memory slots, fresh candidates,
#: positives used, score history).
MAX_PER_USER = 2**20
#: The cap on ``n_users * (memory + fresh)``: the entries of a sampler's
#: candidate memory.
MAX_MEMORY_ENTRIES = 2**32
#: The cap on seeds and epochs (64-bit in the core).
MAX_U64 = 2**64 - 1


def is_tensor(x: Any) -> bool:
    """True for a ``torch.Tensor`` without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "device") and hasattr(x, "dtype")


def _to_numpy(x: Any) -> np.ndarray:
    if is_tensor(x):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple, range)) and len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(x)


def as_ids(x: Any, name: str, ndim: int = 1) -> np.ndarray:
    """Integer ids as a C-contiguous int64 array of ``ndim`` dimensions."""
    try:
        arr = _to_numpy(x)
    except (TypeError, ValueError) as err:
        raise ShapeError(f"{name} must be an array of integer ids: {err}") from None
    if arr.dtype.kind not in "iu":
        raise ShapeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-dimensional, got shape {tuple(arr.shape)}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise IdOutOfRangeError(
            f"{name} holds ids too large for int64 ({int(arr.max())} at index "
            f"{int(np.argmax(arr))})"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_id_width(ids: np.ndarray, name: str) -> None:
    """Ids must be non-negative and fit the core's id width (``<= MAX_ID``)."""
    if ids.size == 0:
        return
    bad = (ids < 0) | (ids > MAX_ID)
    if bad.any():
        p = int(np.argmax(bad))
        raise IdOutOfRangeError(
            f"{name}[{p}] = {int(ids[p])} is not a valid id (ids are in [0, {MAX_ID}])"
        )


def size_arg(value: Any, name: str, *, maximum: int = MAX_ID + 1) -> int:
    """A size (``n_users``, ``n_items``): an integer in ``[0, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ShapeError(f"{name} must be a non-negative integer, got {value!r}")
    if not 0 <= value <= maximum:
        raise ShapeError(f"{name} must be in [0, {maximum}], got {value!r}")
    return int(value)


def as_floats(x: Any, name: str, ndim: int | None = None, *, allow_nan: bool = False) -> np.ndarray:
    """Real numbers as a C-contiguous float32 array; rejects NaN and inf."""
    try:
        arr = _to_numpy(x)
    except (TypeError, ValueError) as err:
        raise ShapeError(f"{name} must be a numeric array: {err}") from None
    if arr.dtype.kind not in "fiu":
        raise ShapeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-dimensional, got shape {tuple(arr.shape)}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, reported below
        out = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(out, name, allow_nan=allow_nan)
    return out


def check_finite(arr: np.ndarray, name: str, *, allow_nan: bool = False) -> None:
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        idx = where[0] if len(where) == 1 else where
        raise NonFiniteError(f"{name} must be finite, found {arr[where]} at index {idx}")


def like(arr: np.ndarray, ref: Any) -> Any:
    """Returns ``arr`` as a torch tensor on ``ref``'s device if ``ref`` is a
    tensor, else as numpy. Ids become ``torch.long``."""
    if not is_tensor(ref):
        return arr
    return to_device(arr, ref.device)


def staged(arr: np.ndarray, device: Any) -> Any:
    """``arr`` as a CPU tensor ready to go to ``device``: in pinned (page-
    locked) memory for CUDA, so that the copy can be asynchronous; shared
    with ``arr`` otherwise. Safe to call from any thread."""
    import torch

    t = torch.from_numpy(arr)
    if torch.device(device).type == "cuda":
        t = t.pin_memory()
    return t


def to_device(arr: Any, device: Any) -> Any:
    """``arr`` (numpy, or a tensor from ``staged``) as a tensor on ``device``.
    Copies to CUDA are non-blocking from pinned memory: they are ordered on
    the current stream before any later use of the tensor, and the caching
    host allocator keeps the pinned buffer until the copy has run."""
    import torch

    t = staged(arr, device) if isinstance(arr, np.ndarray) else arr
    if t.device == torch.device(device):
        return t
    return t.to(device, non_blocking=t.is_pinned())


def positive_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer parameter in ``[minimum, maximum]`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise GnnoError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise GnnoError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise GnnoError(f"{name} must be <= {maximum}, got {value!r}")
    return int(value)


def per_user(value: Any, name: str, *, minimum: int = 1) -> int:
    """A per-user size option (memory slots, candidates, positives used)."""
    return positive_int(value, name, minimum=minimum, maximum=MAX_PER_USER)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed: an integer in ``[0, 2**64)``."""
    return positive_int(seed, name, minimum=0, maximum=MAX_U64)


def finite_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real parameter within ``[low, high]`` (ends open on request)."""
    if isinstance(value, bool):
        raise GnnoError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise GnnoError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise NonFiniteError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        left, right = ("(" if low_open else "["), (")" if high_open else "]")
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise GnnoError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")
    return v
