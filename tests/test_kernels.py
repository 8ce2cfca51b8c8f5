"""The Rust kernels against float64 numpy references written here."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnno import kernels
from gnno.exceptions import GnnoError, IdOutOfRangeError, NonFiniteError, ShapeError


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_expectation(indptr, pos, cand):
    out = np.full(cand.shape, np.nan)
    for u in range(len(indptr) - 1):
        p = pos[indptr[u] : indptr[u + 1]].astype(np.float64)
        if len(p):
            out[u] = sigmoid(cand[u].astype(np.float64)[:, None] - p[None, :]).mean(1)
    return out


def random_csr(rng, n_users, scale):
    degrees = rng.choice([0, 1, 2, 5, 40, 700], size=n_users, p=[0.15, 0.15, 0.2, 0.3, 0.15, 0.05])
    indptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    pos = (rng.normal(size=indptr[-1]) * scale).astype(np.float32)
    return indptr, pos


@pytest.mark.parametrize("scale", [0.01, 1.0, 8.0, 60.0])
def test_sigmoid_expectation_matches_reference(scale):
    rng = np.random.default_rng(int(scale * 10))
    indptr, pos = random_csr(rng, 60, scale)
    cand = (rng.normal(size=(60, 37)) * scale).astype(np.float32)
    h = kernels.sigmoid_expectation(indptr, pos, cand)
    ref = ref_expectation(indptr, pos, cand)
    assert h.dtype == np.float32 and h.shape == cand.shape
    assert np.array_equal(np.isnan(h), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.abs(h[ok] - ref[ok]).max() <= 1e-5


@settings(max_examples=40, deadline=None)
@given(
    degrees=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    m=st.integers(1, 9),
    scale=st.sampled_from([0.1, 3.0, 100.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_sigmoid_expectation_property(degrees, m, scale, seed):
    rng = np.random.default_rng(seed)
    indptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    pos = (rng.normal(size=indptr[-1]) * scale).astype(np.float32)
    cand = (rng.normal(size=(len(degrees), m)) * scale).astype(np.float32)
    h = kernels.sigmoid_expectation(indptr, pos, cand)
    ref = ref_expectation(indptr, pos, cand)
    ok = ~np.isnan(ref)
    assert np.abs(h[ok] - ref[ok]).max(initial=0) <= 1e-5
    assert np.isnan(h[~ok]).all()
    assert ((h[ok] >= 0) & (h[ok] <= 1)).all()


def test_max_positives_samples_a_subset_deterministically():
    indptr = np.array([0, 500], dtype=np.int64)
    pos = np.linspace(-3, 3, 500, dtype=np.float32)
    cand = np.zeros((1, 4), np.float32)
    a = kernels.sigmoid_expectation(indptr, pos, cand, max_positives=50, seed=3)
    b = kernels.sigmoid_expectation(indptr, pos, cand, max_positives=50, seed=3)
    c = kernels.sigmoid_expectation(indptr, pos, cand, max_positives=50, seed=4)
    exact = kernels.sigmoid_expectation(indptr, pos, cand)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(float(a[0, 0]) - float(exact[0, 0])) < 0.1


def test_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    indptr, pos = random_csr(rng, 10, 1.0)
    cand = rng.normal(size=(10, 3)).astype(np.float32)
    copies = [indptr.copy(), pos.copy(), cand.copy()]
    kernels.sigmoid_expectation(indptr, pos, cand)
    for a, b in zip([indptr, pos, cand], copies, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("args", "err", "needle"),
    [
        (([0, 2], [0.0], [[0.0]]), ShapeError, "indptr[-1]=2"),
        (([0, 1], [np.nan], [[0.0]]), NonFiniteError, "pos_scores"),
        (([0, 1], [0.0], [[np.inf]]), NonFiniteError, "cand_scores"),
        (([0, 1], [0.0], [0.0]), ShapeError, "2-dimensional"),
        (([1, 1], [0.0], [[0.0]]), GnnoError, "indptr[0]"),
        (([0, 1, 0], [0.0], [[0.0], [0.0]]), GnnoError, "non-decreasing"),
        (([0.0, 1.0], [0.0], [[0.0]]), ShapeError, "integer"),
    ],
)
def test_sigmoid_expectation_errors(args, err, needle):
    with pytest.raises(err) as info:
        kernels.sigmoid_expectation(*args)
    assert needle in str(info.value)


def test_gain_update_matches_formula_and_keeps_g_without_history():
    rng = np.random.default_rng(1)
    h_prev = rng.random((5, 7)).astype(np.float32)
    h_prev[0, :3] = np.nan
    h_now = rng.random((5, 7)).astype(np.float32)
    g_prev = rng.random((5, 7)).astype(np.float32)
    g = kernels.gain_update(h_prev, h_now, g_prev, alpha=0.2, eps=1e-6)
    hp, hn, gp = (a.astype(np.float64) for a in (h_prev, h_now, g_prev))
    ref = 0.2 * gp + 0.8 * sigmoid((hp - hn) / (hn + 1e-6))
    ref[np.isnan(hp)] = gp[np.isnan(hp)]
    assert g.shape == (5, 7)
    assert np.abs(g - ref).max() < 1e-6
    with pytest.raises(GnnoError, match="alpha"):
        kernels.gain_update(h_prev, h_now, g_prev, alpha=1.5)
    with pytest.raises(ShapeError):
        kernels.gain_update(h_prev, h_now[:2], g_prev)


def test_topk_ties_and_nan():
    v = np.array([[1.0, np.nan, 3.0, 3.0, 2.0], [np.nan, np.nan, 0.0, -1.0, -1.0]], np.float32)
    assert kernels.topk(v, 3).tolist() == [[2, 3, 4], [2, 3, 4]]
    with pytest.raises(GnnoError, match="k must be in"):
        kernels.topk(v, 6)


def test_topk_matches_stable_argsort():
    rng = np.random.default_rng(5)
    v = rng.integers(0, 4, size=(50, 20)).astype(np.float32)
    ref = np.argsort(-v, axis=1, kind="stable")[:, :5]
    assert np.array_equal(kernels.topk(v, 5), ref)


def test_gumbel_topk_frequencies_follow_softmax():
    logits = np.log(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    v = np.tile(logits, (20000, 1))
    idx = kernels.gumbel_topk(v, 1, temperature=1.0, seed=0)[:, 0]
    freq = np.bincount(idx, minlength=4) / len(idx)
    assert np.abs(freq - np.array([0.1, 0.2, 0.3, 0.4])).max() < 0.015
    two = kernels.gumbel_topk(v[:100], 2, seed=1)
    assert (two[:, 0] != two[:, 1]).all()
    hot = kernels.gumbel_topk(v, 1, temperature=100.0, seed=0)[:, 0]
    assert np.abs(np.bincount(hot, minlength=4) / len(hot) - 0.25).max() < 0.02


def test_fused_path_matches_two_step():
    rng = np.random.default_rng(2)
    n_users, n_items, d = 30, 50, 8
    U = rng.normal(size=(n_users, d)).astype(np.float32)
    V = rng.normal(size=(n_items, d)).astype(np.float32)
    degrees = rng.integers(0, 10, n_users)
    indptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    indices = np.concatenate(
        [np.sort(rng.choice(n_items, k, replace=False)) for k in degrees]
    ).astype(np.int64)
    cand = rng.integers(-1, n_items, size=(n_users, 6))
    h, s = kernels.expectation_from_vectors(indptr, indices, U, V, cand)
    users = np.repeat(np.arange(n_users), degrees)
    pos = np.einsum("nd,nd->n", U[users], V[indices]).astype(np.float32)
    cs = np.einsum("ud,umd->um", U, V[np.maximum(cand, 0)]).astype(np.float32)
    ref = ref_expectation(indptr, pos, cs)
    empty = (cand < 0) | (degrees[:, None] == 0)
    assert np.isnan(h[empty]).all()
    assert np.abs(h[~empty] - ref[~empty]).max() < 1e-5
    assert np.abs(s[cand >= 0] - cs[cand >= 0]).max() < 1e-4
    with pytest.raises(IdOutOfRangeError, match="candidates"):
        kernels.expectation_from_vectors(indptr, indices, U, V, np.full((n_users, 1), n_items))
