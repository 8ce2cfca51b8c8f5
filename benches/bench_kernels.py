"""Issue 3: the sigmoid-expectation kernel and a full gain refresh on ML-1M."""

from __future__ import annotations

import numpy as np
import pytest

import gnno
from _compare import compare, fraction_of_peak, record_result
from gnno import kernels

pytestmark = pytest.mark.benchmark(group="kernels")

M = 100  # candidates per user


def numpy_expectation(indptr, pos, cand):
    """The natural numpy version: one vectorised (m × deg) block per user."""
    out = np.empty_like(cand)
    for u in range(len(indptr) - 1):
        p = pos[indptr[u] : indptr[u + 1]]
        if len(p) == 0:
            out[u] = np.nan
            continue
        out[u] = (1.0 / (1.0 + np.exp(p[None, :] - cand[u][:, None]))).mean(axis=1)
    return out


@pytest.fixture(scope="module")
def scores(ml1m):
    rng = np.random.default_rng(0)
    pos = rng.normal(0.0, 2.0, size=ml1m.nnz).astype(np.float32)
    cand = rng.normal(0.0, 2.0, size=(ml1m.n_users, M)).astype(np.float32)
    return pos, cand


def test_sigmoid_expectation(benchmark, ml1m, scores):
    pos, cand = scores
    h = kernels.sigmoid_expectation(ml1m.indptr, pos, cand)
    ref = numpy_expectation(ml1m.indptr, pos, cand)
    assert np.abs(h - ref).max() < 1e-5
    compare(
        benchmark,
        "sigmoid_expectation, 100 cand/user (ML-1M)",
        lambda: kernels.sigmoid_expectation(ml1m.indptr, pos, cand),
        lambda: numpy_expectation(ml1m.indptr, pos, cand),
        items=float(ml1m.nnz) * M,
        unit="sigmoid pairs",
    )


def numpy_gain_refresh(indptr, indices, U, V, memory, rng, fresh=64, slots=32):
    """The same refresh in numpy: fresh candidates by rejection, scores, H,
    G where a previous H exists, top-`slots` retention by H."""
    items, h_prev, g = memory
    n_users, n_items = U.shape[0], V.shape[0]
    out_items = np.empty_like(items)
    out_h = np.empty_like(h_prev)
    out_g = np.empty_like(g)
    for u in range(n_users):
        row = indices[indptr[u] : indptr[u + 1]]
        cand = rng.integers(0, n_items, size=fresh)
        cand = cand[~np.isin(cand, row)]
        keep = items[u] >= 0
        allc = np.concatenate([items[u][keep], cand])
        uv = U[u]
        s = V[allc] @ uv
        p = V[row] @ uv
        h = (1.0 / (1.0 + np.exp(p[None, :] - s[:, None]))).mean(axis=1)
        hp = np.concatenate([h_prev[u][keep], np.full(len(cand), np.nan, np.float32)])
        gp = np.concatenate([g[u][keep], np.full(len(cand), 0.5, np.float32)])
        step = 1.0 / (1.0 + np.exp(-(hp - h) / (h + 1e-6)))
        gn = np.where(np.isnan(hp), gp, 0.2 * gp + 0.8 * step)
        order = np.argsort(-h, kind="stable")[:slots]
        n = len(order)
        out_items[u, :n], out_h[u, :n], out_g[u, :n] = allc[order], h[order], gn[order]
        out_items[u, n:], out_h[u, n:], out_g[u, n:] = -1, np.nan, 0.5
    return out_items, out_h, out_g


def test_gain_refresh_from_embeddings(benchmark, ml1m):
    rng = np.random.default_rng(1)
    U = rng.normal(0, 0.3, size=(ml1m.n_users, 32)).astype(np.float32)
    V = rng.normal(0, 0.3, size=(ml1m.n_items, 32)).astype(np.float32)
    sampler = gnno.GainSampler(ml1m, memory=32, fresh=64, retain="top", seed=0)
    sampler.refresh_embeddings(U, V)
    d = sampler.diagnostics()
    memory = (d["items"].astype(np.int64), d["h"], d["g"])
    indices = ml1m.indices.astype(np.int64)
    compare(
        benchmark,
        "GainSampler refresh from vectors (ML-1M, 32+64)",
        lambda: sampler.refresh_embeddings(U, V),
        lambda: numpy_gain_refresh(ml1m.indptr, indices, U, V, memory, rng),
        items=float(ml1m.n_users),
        unit="users",
        rounds=5,
        reference_rounds=1,
    )


def test_sigmoid_expectation_fraction_of_peak(benchmark, ml1m, scores):
    """The peak: the same kernel on rows of 2,048 positives that stay in L1,
    with 1,250 candidates each and 16 rows per thread (the kernel hands out
    users in blocks of 16), so loads and per-user work vanish and only the
    arithmetic per pair is left, on every thread."""
    pos, cand = scores
    threads = gnno.get_num_threads()
    deg, m, rows = 2048, 1250, 16 * threads
    rng = np.random.default_rng(4)
    peak_indptr = np.arange(0, (rows + 1) * deg, deg, dtype=np.int64)
    peak_pos = rng.normal(0, 2, size=rows * deg).astype(np.float32)
    peak_cand = rng.normal(0, 2, size=(rows, m)).astype(np.float32)
    fraction_of_peak(
        benchmark,
        "sigmoid_expectation vs L1-resident peak",
        lambda: kernels.sigmoid_expectation(ml1m.indptr, pos, cand),
        float(ml1m.nnz) * M,
        lambda: kernels.sigmoid_expectation(peak_indptr, peak_pos, peak_cand),
        float(rows * deg * m),
        "sigmoid pairs",
    )


def uniform_gmf_steps(ml1m, model, steps: int | None, batch: int = 1024) -> int:
    """Trains GMF with BPR and uniform negatives for ``steps`` batches (the
    whole epoch when None); returns the number of steps run."""
    import torch

    users, items = (torch.from_numpy(a) for a in ml1m.to_pairs())
    sampler = gnno.UniformSampler(ml1m, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(users), generator=torch.Generator().manual_seed(0))
    n = 0
    for b in order.split(batch):
        if steps is not None and n >= steps:
            break
        u, i = users[b], items[b]
        j = sampler.sample_for_pairs(u, i)[:, 0]
        loss = gnno.bpr_loss(model(u, i), model(u, j))
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += 1
    return n


def test_gain_refresh_as_fraction_of_a_uniform_epoch(benchmark, ml1m):
    """A full GainSampler refresh from a GMF (vectors out of torch, scores,
    H, G, retention) against one uniform-sampling GMF epoch on the CPU.
    Benchmarks off: 100 training steps, scaled to the epoch's step count."""
    import math
    import time

    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # GMF's small steps run fastest on one thread
    model = gnno.GMF(ml1m.n_users, ml1m.n_items, dim=32)
    sampler = gnno.GainSampler(ml1m, seed=0)
    sampler.refresh(model)
    enabled = not getattr(benchmark, "disabled", False)
    steps_per_epoch = math.ceil(ml1m.nnz / 1024)
    t = time.perf_counter()
    try:
        ran = uniform_gmf_steps(ml1m, model, None if enabled else 100)
    finally:
        torch.set_num_threads(threads)
    epoch_s = (time.perf_counter() - t) * steps_per_epoch / ran
    if enabled:
        benchmark.pedantic(lambda: sampler.refresh(model), rounds=7, iterations=1, warmup_rounds=1)
        refresh_s = float(benchmark.stats.stats.median)
    else:
        t = time.perf_counter()
        sampler.refresh(model)
        refresh_s = time.perf_counter() - t
        benchmark(lambda: None)
    record_result(
        benchmark,
        {
            "name": "GainSampler.refresh(GMF) / uniform GMF epoch",
            "unit": "refreshes",
            "items": 1.0,
            "rust_median_s": refresh_s,
            "reference_median_s": epoch_s,
            "rust_items_per_s": 1.0 / refresh_s,
            "reference_items_per_s": 1.0 / epoch_s,
            "ratio": epoch_s / refresh_s,
            "measured": enabled,
            "kind": "fraction of epoch",
        },
    )
