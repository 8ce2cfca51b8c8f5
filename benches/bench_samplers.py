"""Issue 4: an epoch of DNS draws and an SRNS memory step on ML-1M."""

from __future__ import annotations

import numpy as np
import pytest

import gnno
from _compare import compare

pytestmark = pytest.mark.benchmark(group="samplers")

BATCH = 1024


@pytest.fixture(scope="module")
def vectors(ml1m):
    rng = np.random.default_rng(2)
    U = rng.normal(0, 0.3, size=(ml1m.n_users, 32)).astype(np.float32)
    V = rng.normal(0, 0.3, size=(ml1m.n_items, 32)).astype(np.float32)
    return U, V


def rejection_negatives(users, keys, n_items, size, rng):
    """`size` uniform negatives per user by vectorised rejection sampling."""
    out = rng.integers(0, n_items, size=(len(users), size))
    todo = np.ones(out.shape, bool)
    while todo.any():
        k = users[:, None] * n_items + out
        pos = np.searchsorted(keys, k)
        hit = keys[np.minimum(pos, len(keys) - 1)] == k
        todo = hit
        out[hit] = rng.integers(0, n_items, size=int(hit.sum()))
    return out


def numpy_dns_epoch(users, items, keys, U, V, n_items, rng, candidates=5):
    """DNS in numpy: per batch, `candidates` uniform negatives per pair,
    scored from the vectors, the highest kept."""
    out = np.empty(len(users), np.int64)
    for a in range(0, len(users), BATCH):
        u = users[a : a + BATCH]
        cand = rejection_negatives(u, keys, n_items, candidates, rng)
        scores = np.einsum("bd,bcd->bc", U[u], V[cand])
        out[a : a + BATCH] = cand[np.arange(len(u)), scores.argmax(1)]
    return out


def test_dns_epoch_of_draws(benchmark, ml1m, vectors):
    U, V = vectors
    users, items = ml1m.to_pairs()
    order = np.random.default_rng(0).permutation(len(users))
    users, items = users[order], items[order]
    keys = np.sort(ml1m.to_pairs()[0] * ml1m.n_items + ml1m.indices)
    sampler = gnno.DNSSampler(ml1m, fresh_candidates=5, seed=0)
    sampler.refresh_embeddings(U, V)
    rng = np.random.default_rng(1)

    def rust_epoch():
        return np.concatenate(
            [
                sampler.sample_for_pairs(users[a : a + BATCH], items[a : a + BATCH])[:, 0]
                for a in range(0, len(users), BATCH)
            ]
        )

    neg = rust_epoch()
    ref = numpy_dns_epoch(users, items, keys, U, V, ml1m.n_items, rng)
    assert not ml1m.contains(users, neg).any() and not ml1m.contains(users, ref).any()
    # Same rule, same scores: the chosen negatives score alike on average.
    s_rust = np.einsum("nd,nd->n", U[users], V[neg]).mean()
    s_ref = np.einsum("nd,nd->n", U[users], V[ref]).mean()
    assert abs(s_rust - s_ref) < 0.01 * abs(s_ref) + 1e-3
    compare(
        benchmark,
        "DNSSampler, one epoch of draws (ML-1M, 5 cand)",
        rust_epoch,
        lambda: numpy_dns_epoch(users, items, keys, U, V, ml1m.n_items, rng),
        items=len(users),
        unit="negatives",
        rounds=3,
        reference_rounds=1,
    )


def numpy_srns_step(indptr, indices, U, V, memory, history, pos_history, rng, s2=64, tau=10.0):
    """SRNS's memory step in numpy: top up with `s2` uniform candidates,
    score memory, candidates and positives, shift the score history, keep
    `s1` ∝ softmax(score / tau) without replacement (Gumbel top-k)."""
    n_users, s1 = memory.shape
    n_items = V.shape[0]
    new_mem = np.empty_like(memory)
    new_hist = np.empty_like(history)
    pos_history = np.roll(pos_history, -1, axis=1)
    users = np.repeat(np.arange(n_users), np.diff(indptr))
    pos_history[:, -1] = np.einsum("nd,nd->n", U[users], V[indices])
    for u in range(n_users):
        row = indices[indptr[u] : indptr[u + 1]]
        fresh = rng.integers(0, n_items, size=s2)
        fresh = np.setdiff1d(fresh[~np.isin(fresh, row)], memory[u])
        cand = np.concatenate([memory[u], fresh])
        scores = V[cand] @ U[u]
        hist = np.concatenate(
            [history[u], np.full((len(fresh), history.shape[2]), np.nan, np.float32)]
        )
        hist = np.roll(hist, -1, axis=1)
        hist[:, -1] = scores
        keep = np.argsort(-(scores / tau + rng.gumbel(size=len(cand))))[:s1]
        new_mem[u], new_hist[u] = cand[keep], hist[keep]
    return new_mem, new_hist, pos_history


def test_srns_memory_step(benchmark, ml1m, vectors):
    U, V = vectors
    sampler = gnno.SRNSSampler(ml1m, memory=8, fresh=64, history=5, seed=0)
    sampler.refresh_embeddings(U, V)
    state = sampler.state_dict()["memory"]
    memory = state["items"].reshape(ml1m.n_users, 8).astype(np.int64)
    history = state["history"].reshape(ml1m.n_users, 8, 5)
    pos_history = state["positive_history"].reshape(ml1m.nnz, 5)
    indices = ml1m.indices.astype(np.int64)
    rng = np.random.default_rng(3)
    compare(
        benchmark,
        "SRNSSampler memory step (ML-1M, 8+64, W=5)",
        lambda: sampler.refresh_embeddings(U, V),
        lambda: numpy_srns_step(ml1m.indptr, indices, U, V, memory, history, pos_history, rng),
        items=float(ml1m.n_users),
        unit="users",
        rounds=5,
        reference_rounds=1,
    )
