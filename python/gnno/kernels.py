"""The Rust kernels behind the score-based samplers, on numpy arrays.

Each takes and returns numpy arrays (float32 scores, int64 ids), runs in
parallel with the GIL released, and gives the same result for a seed
whatever the thread count. Inputs are checked and never modified.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnno import _gnno
from gnno._arrays import (
    MAX_DRAWS,
    MAX_PER_USER,
    as_floats,
    as_ids,
    check_seed,
    finite_float,
    positive_int,
)
from gnno.exceptions import GnnoError, ShapeError

#: The most threads ``set_num_threads`` accepts.
MAX_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Sets the number of threads of gnno's pool (``1 <= n <= 1024``); the
    next parallel call uses it. Results do not depend on it."""
    _gnno.set_num_threads(positive_int(n, "num_threads", minimum=1, maximum=MAX_THREADS))


def get_num_threads() -> int:
    """The number of threads the next parallel call will use."""
    return int(_gnno.get_num_threads())


def _cap(max_positives: int | None) -> int | None:
    if max_positives is None:
        return None
    return positive_int(max_positives, "max_positives", maximum=MAX_PER_USER)


def _check_k(k: Any, columns: int) -> int:
    k = positive_int(k, "k", maximum=MAX_DRAWS)
    if k > columns:
        raise GnnoError(f"k must be in [1, {columns}] (the number of columns), got {k}")
    return k


def sigmoid_expectation(
    indptr: Any,
    pos_scores: Any,
    cand_scores: Any,
    max_positives: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``H[u, c] = mean_i σ(cand_scores[u, c] − pos_scores[i])`` over user
    ``u``'s positives ``i ∈ indptr[u]:indptr[u+1]``.

    ``indptr``: int ``(n_users + 1,)``; ``pos_scores``: float ``(nnz,)``;
    ``cand_scores``: float ``(n_users, m)``. Returns float32 ``(n_users, m)``;
    a user without positives gets NaN. With ``max_positives`` the mean runs
    over a seeded sample of at most that many positives per user.
    """
    ip = as_ids(indptr, "indptr")
    pos = as_floats(pos_scores, "pos_scores", 1)
    cand = as_floats(cand_scores, "cand_scores", 2)
    return _gnno.sigmoid_expectation(ip, pos, cand, _cap(max_positives), check_seed(seed))


def gain_update(
    h_prev: Any, h_now: Any, g_prev: Any, alpha: float = 0.2, eps: float = 1e-6
) -> np.ndarray:
    """``G = α·G_prev + (1 − α)·σ((H_prev − H_now)/(H_now + ε))`` element-wise.

    NaN in ``h_prev`` (or ``h_now``) means "no observation": the slot keeps
    ``g_prev``. Arrays of any equal shape; returns float32 of that shape.
    """
    hp = as_floats(h_prev, "h_prev", allow_nan=True)
    hn = as_floats(h_now, "h_now", allow_nan=True)
    gp = as_floats(g_prev, "g_prev")
    if not (hp.shape == hn.shape == gp.shape):
        raise ShapeError(
            f"h_prev, h_now and g_prev must have the same shape, got {hp.shape}, {hn.shape} and {gp.shape}"
        )
    a = finite_float(alpha, "alpha", low=0.0, high=1.0)
    e = finite_float(eps, "eps")
    out = _gnno.gain_update(hp.ravel(), hn.ravel(), gp.ravel(), a, e)
    return out.reshape(gp.shape)


def topk(values: Any, k: int) -> np.ndarray:
    """Per-row indices of the ``k`` largest values, best first, ``(rows, k)``
    int64. NaN ranks below every number; ties go to the lower column."""
    v = as_floats(values, "values", 2, allow_nan=True)
    return _gnno.topk(v, _check_k(k, v.shape[1]))


def gumbel_topk(values: Any, k: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """Per-row ``k`` distinct columns sampled without replacement with
    probability ∝ ``softmax(values / temperature)`` (Gumbel-top-k),
    ``(rows, k)`` int64. NaN entries come after every finite one."""
    v = as_floats(values, "values", 2, allow_nan=True)
    t = finite_float(temperature, "temperature", low=0.0, low_open=True)
    return _gnno.gumbel_topk(v, _check_k(k, v.shape[1]), t, check_seed(seed))


def expectation_from_vectors(
    indptr: Any,
    indices: Any,
    user_vectors: Any,
    item_vectors: Any,
    cand_items: Any,
    max_positives: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores and ``H`` for dot-product models
    (``score(u, i) = ⟨user_vectors[u], item_vectors[i]⟩``, which covers GMF,
    MF and two-tower models) without materialising an ``nnz × m`` array.

    ``cand_items``: int ``(n_users, m)``, ``-1`` for an empty slot (NaN out).
    Returns ``(H, candidate_scores)``, both float32 ``(n_users, m)``.
    """
    ip = as_ids(indptr, "indptr")
    ix = as_ids(indices, "indices")
    uv = as_floats(user_vectors, "user_vectors", 2)
    iv = as_floats(item_vectors, "item_vectors", 2)
    cand = as_ids(cand_items, "cand_items", 2)
    return _gnno.expectation_from_vectors(
        ip, ix, uv, iv, cand, _cap(max_positives), check_seed(seed)
    )


def simd_path() -> str:
    """The SIMD path the compiled kernels use in this process:
    ``"generic"``, ``"avx2"`` or ``"avx512"``. Chosen once, from the CPU,
    or forced by the ``GNNO_SIMD`` environment variable (read once; a
    value the CPU cannot run falls back to the detected path with a
    ``RuntimeWarning`` on import)."""
    return _gnno.simd_path()


def simd_paths() -> list[str]:
    """The SIMD paths this CPU supports, narrowest first."""
    return list(_gnno.simd_paths())


__all__ = [
    "simd_path",
    "simd_paths",
    "set_num_threads",
    "get_num_threads",
    "sigmoid_expectation",
    "gain_update",
    "topk",
    "gumbel_topk",
    "expectation_from_vectors",
]
