"""Issue 2: building the CSR matrix and uniform sampling on ML-1M."""

from __future__ import annotations

import numpy as np
import pytest

import gnno
from _compare import compare

pytestmark = pytest.mark.benchmark(group="foundation")


def numpy_csr(users: np.ndarray, items: np.ndarray):
    """The straightforward numpy build: sort by (user, item), drop duplicates."""
    n_items = int(items.max()) + 1
    keys = np.unique(users * n_items + items)
    u, i = np.divmod(keys, n_items)
    indptr = np.zeros(int(u.max()) + 2, dtype=np.int64)
    np.add.at(indptr, u + 1, 1)
    return np.cumsum(indptr), i


def numpy_uniform(users: np.ndarray, indptr, indices, n_items: int, rng) -> np.ndarray:
    """Vectorised rejection sampling: draw, test membership with a sorted key
    array, redraw the rejected until none is left."""
    keys = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)) * n_items + indices
    out = rng.integers(0, n_items, size=len(users))
    todo = np.arange(len(users))
    while len(todo):
        k = users[todo] * n_items + out[todo]
        pos = np.searchsorted(keys, k)
        hit = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == k)
        todo = todo[hit]
        out[todo] = rng.integers(0, n_items, size=len(todo))
    return out


def test_build_interactions(benchmark, ml1m_pairs):
    users, items = ml1m_pairs
    ref_indptr, ref_indices = numpy_csr(users, items)
    m = gnno.Interactions.from_pairs(users, items)
    assert np.array_equal(m.indptr, ref_indptr) and np.array_equal(m.indices, ref_indices)
    compare(
        benchmark,
        "Interactions.from_pairs (ML-1M)",
        lambda: gnno.Interactions.from_pairs(users, items),
        lambda: numpy_csr(users, items),
        items=len(users),
        unit="pairs",
    )


def test_uniform_sampling_one_per_pair(benchmark, ml1m, ml1m_pairs):
    users, _ = ml1m_pairs
    sampler = gnno.UniformSampler(ml1m, seed=0)
    rng = np.random.default_rng(0)
    neg = sampler.sample(users, 1)[:, 0]
    ref = numpy_uniform(users, ml1m.indptr, ml1m.indices.astype(np.int64), ml1m.n_items, rng)
    assert not ml1m.contains(users, neg).any() and not ml1m.contains(users, ref).any()
    # Same distribution: per-item frequencies agree within sampling noise.
    f1 = np.bincount(neg, minlength=ml1m.n_items) / len(neg)
    f2 = np.bincount(ref, minlength=ml1m.n_items) / len(ref)
    assert np.abs(f1 - f2).max() < 3e-4
    compare(
        benchmark,
        "UniformSampler.sample, 1 per pair (ML-1M)",
        lambda: sampler.sample(users, 1),
        lambda: numpy_uniform(users, ml1m.indptr, ml1m.indices.astype(np.int64), ml1m.n_items, rng),
        items=len(users),
        unit="negatives",
    )
