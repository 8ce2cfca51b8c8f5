"""Property-based tests: arbitrary input into the public entries gives a
result or a gnno error, never another exception, a panic or an abort, and a
drawn negative is never a training positive.

Sizes are kept to what a test can allocate: ids are either small or far out
of range (negative, beyond the 32-bit id width, near the int64 limits), so
that a value the library accepts never asks for gigabytes. Each property
runs 60 examples; ``GNNO_HYPOTHESIS_EXAMPLES=1000`` runs more.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gnno  # noqa: E402
from gnno import kernels  # noqa: E402
from gnno.datasets import load_csv, load_lightgcn, load_ncf  # noqa: E402
from gnno.exceptions import DataFormatError, GnnoError  # noqa: E402
from gnno.samplers import SAMPLERS, ShardedSampler, build_sampler  # noqa: E402

FAST = settings(
    max_examples=int(os.environ.get("GNNO_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

HOSTILE_INTS = [-1, -(2**31), 2**31, 2**32, 2**62, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, 10**30]
small = st.integers(min_value=0, max_value=40)
hostile = st.sampled_from(HOSTILE_INTS)
anyint = st.one_of(small, small, small, hostile)
# Values an option may be given: numbers, junk, and the types people mix up.
junk = st.one_of(
    anyint,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, True, "3", "x", [1], (), {}, 1.5, np.int32(3), np.float32(0.5)]),
)

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
ALL_DTYPES = [*INT_DTYPES, "float32", "float64", "bool", "object"]


@st.composite
def id_arrays(draw, min_size=0, max_size=12):
    """An id array of an arbitrary dtype and shape, or a list, or a tensor."""
    values = draw(st.lists(anyint, min_size=min_size, max_size=max_size))
    kind = draw(st.sampled_from(["list", "numpy", "numpy2d", "tensor", "scalar"]))
    if kind == "list":
        return values
    if kind == "scalar":
        return values[0] if values else 0
    dtype = draw(st.sampled_from(ALL_DTYPES))
    try:
        arr = np.array(values, dtype=object).astype(dtype)
    except (OverflowError, ValueError, TypeError):
        arr = np.array(values, dtype=object)
    if kind == "numpy2d" and arr.size:
        arr = arr.reshape(1, -1)
    if kind == "tensor":
        try:
            return torch.as_tensor(np.asarray(arr, dtype=np.int64))
        except (OverflowError, ValueError, TypeError):
            return arr
    if draw(st.booleans()) and arr.ndim == 1 and arr.size > 1:
        arr = arr[::-1]  # not contiguous
    return arr


def only_gnno_errors(call):
    """Runs ``call``; returns its result, or None when it raised a gnno
    error. Any other exception fails the test."""
    try:
        return call()
    except GnnoError:
        return None


def small_train(seed=0, n_users=12, n_items=15):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), 4)
    items = np.concatenate([rng.choice(n_items, 4, replace=False) for _ in range(n_users)])
    return gnno.Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)


TRAIN = small_train()
VECTORS = (
    np.random.default_rng(1).normal(size=(TRAIN.n_users, 4)).astype(np.float32),
    np.random.default_rng(2).normal(size=(TRAIN.n_items, 4)).astype(np.float32),
)


def check_negatives(train, users, negatives):
    users = np.asarray(users, dtype=np.int64)
    negatives = np.asarray(negatives)
    assert negatives.shape[0] == len(users)
    assert ((negatives >= 0) & (negatives < train.n_items)).all()
    k = negatives.shape[1]
    assert not train.contains(np.repeat(users, k), negatives.ravel()).any()


# -- Interactions ------------------------------------------------------------------------


@FAST
@given(
    users=id_arrays(),
    items=id_arrays(),
    n_users=st.one_of(st.none(), junk),
    n_items=st.one_of(st.none(), junk),
)
def test_from_pairs_gives_interactions_or_a_gnno_error(users, items, n_users, n_items):
    before = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in (users, items)]
    m = only_gnno_errors(lambda: gnno.Interactions.from_pairs(users, items, n_users, n_items))
    if m is not None:
        u, i = m.to_pairs()
        assert m.contains(u, i).all()
        assert len(u) == m.nnz <= len(np.atleast_1d(np.asarray(users, dtype=object)))
    for x, b in zip((users, items), before, strict=True):
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, b, equal_nan=False) or x.dtype == object


@FAST
@given(indptr=id_arrays(), indices=id_arrays(), n_users=junk, n_items=junk)
def test_from_csr_gives_interactions_or_a_gnno_error(indptr, indices, n_users, n_items):
    m = only_gnno_errors(lambda: gnno.Interactions.from_csr(indptr, indices, n_users, n_items))
    if m is not None:
        assert np.array_equal(m.indptr, np.asarray(indptr, dtype=np.int64))
        assert m.n_users == n_users and m.n_items == n_items


# -- samplers -----------------------------------------------------------------------------

OPTION_NAMES = sorted(
    {
        "seed",
        "popularity_beta",
        "fresh_candidates",
        "candidates",
        "memory",
        "fresh",
        "variance_weight",
        "warmup",
        "retain_temperature",
        "history",
        "step_memory",
        "s1",
        "s2",
        "gain_alpha",
        "eps",
        "g0",
        "retain",
        "max_positives",
        "memory_candidates",
        "criterion",
        "gain_beta",
        "draw_temperature",
        "gain_positives",
        "beta",
        "alpha",
    }
)
option_value = st.one_of(
    junk,
    st.sampled_from(["top", "softmax", "softmax_score", "random", "gain", "score", "srns"]),
)


@FAST
@given(
    name=st.sampled_from([*SAMPLERS, "nope", 3]),
    options=st.dictionaries(st.sampled_from(OPTION_NAMES), option_value, max_size=3),
)
def test_every_constructor_builds_or_raises_a_gnno_error(name, options):
    s = only_gnno_errors(lambda: build_sampler(name, TRAIN, **options))
    if s is not None:
        if s.needs_scores:
            s.refresh_embeddings(*VECTORS)
        users = np.arange(TRAIN.n_users)
        check_negatives(TRAIN, users, s.sample(users, 2))


def _sampler(name):
    if name == "sharded":
        s = ShardedSampler("gain", TRAIN, num_replicas=1, rank=0, seed=1, memory=3, fresh=4)
    else:
        s = build_sampler(name, TRAIN, seed=1)
    if s.needs_scores:
        s.refresh_embeddings(*VECTORS)
    return s


SAMPLER_NAMES = [*SAMPLERS, "sharded"]
READY = {name: _sampler(name) for name in SAMPLER_NAMES}


@FAST
@given(
    name=st.sampled_from(SAMPLER_NAMES),
    users=id_arrays(),
    positives=id_arrays(),
    k=junk,
    epoch=junk,
)
def test_draws_give_negatives_or_a_gnno_error(name, users, positives, k, epoch):
    s = READY[name]
    only_gnno_errors(lambda: s.set_epoch(epoch))
    out = only_gnno_errors(lambda: s.sample(users, k))
    if out is not None:
        check_negatives(TRAIN, np.asarray(users).ravel(), out)
    out = only_gnno_errors(lambda: s.sample_for_pairs(users, positives, k))
    if out is not None:
        check_negatives(TRAIN, np.asarray(users).ravel(), out)


def _garble(state, key, value):
    state = dict(state)
    if value is _DROP:
        state.pop(key, None)
    else:
        state[key] = value
    return state


_DROP = object()


@FAST
@given(
    name=st.sampled_from(SAMPLER_NAMES),
    edits=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "sampler",
                    "shape",
                    "fingerprint",
                    "seed",
                    "epoch",
                    "calls",
                    "config",
                    "memory",
                    "embeddings",
                    "popularity_beta",
                    "inner",
                    "rank",
                    "num_replicas",
                ]
            ),
            st.one_of(junk, st.just(_DROP), st.just([[1, 2]]), st.just(np.zeros(3))),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_load_state_dict_loads_or_raises_a_gnno_error(name, edits):
    s = READY[name]
    good = s.state_dict()
    state = good
    for key, value in edits:
        state = _garble(state, key, value)
    only_gnno_errors(lambda: s.load_state_dict(state))
    s.load_state_dict(good)  # still loads its own state
    users = s.local_users if name == "sharded" else np.arange(TRAIN.n_users)
    check_negatives(s.train, s.to_local(users) if name == "sharded" else users, s.sample(users, 1))


# -- kernels --------------------------------------------------------------------------------


@st.composite
def float_arrays(draw, max_rows=4, max_cols=5):
    rows = draw(st.integers(0, max_rows))
    cols = draw(st.integers(0, max_cols))
    values = draw(
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            min_size=rows * cols,
            max_size=rows * cols,
        )
    )
    arr = np.array(values, dtype=np.float32).reshape(rows, cols)
    shape = draw(st.sampled_from(["2d", "1d", "3d", "list", "int"]))
    if shape == "1d":
        return arr.ravel()
    if shape == "3d":
        return arr.reshape(1, rows, cols)
    if shape == "list":
        return arr.tolist()
    if shape == "int":
        return np.nan_to_num(arr).astype(np.int64)
    return arr


@FAST
@given(values=float_arrays(), k=junk, temperature=junk, seed=junk)
def test_topk_kernels(values, k, temperature, seed):
    out = only_gnno_errors(lambda: kernels.topk(values, k))
    if out is not None:
        assert out.shape == (np.asarray(values).shape[0], k)
    out = only_gnno_errors(lambda: kernels.gumbel_topk(values, k, temperature, seed))
    if out is not None:
        assert out.shape == (np.asarray(values).shape[0], k)
        assert all(len(set(row)) == k for row in out.tolist())


@FAST
@given(
    indptr=id_arrays(),
    pos=float_arrays(),
    cand=float_arrays(),
    max_positives=st.one_of(st.none(), junk),
    seed=junk,
)
def test_sigmoid_expectation(indptr, pos, cand, max_positives, seed):
    only_gnno_errors(lambda: kernels.sigmoid_expectation(indptr, pos, cand, max_positives, seed))


@FAST
@given(h_prev=float_arrays(), h_now=float_arrays(), g_prev=float_arrays(), alpha=junk, eps=junk)
def test_gain_update(h_prev, h_now, g_prev, alpha, eps):
    only_gnno_errors(lambda: kernels.gain_update(h_prev, h_now, g_prev, alpha, eps))


@FAST
@given(
    indptr=id_arrays(),
    indices=id_arrays(),
    uv=float_arrays(),
    iv=float_arrays(),
    cand=id_arrays(),
    max_positives=st.one_of(st.none(), junk),
    seed=junk,
)
def test_expectation_from_vectors(indptr, indices, uv, iv, cand, max_positives, seed):
    cand2 = np.asarray(cand).reshape(1, -1) if np.asarray(cand).ndim == 1 else cand
    only_gnno_errors(
        lambda: kernels.expectation_from_vectors(
            indptr, indices, uv, iv, cand2, max_positives, seed
        )
    )


# -- text parsers ---------------------------------------------------------------------------

text_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from(
            [
                b"0",
                b"1",
                b"7",
                b"12",
                b" ",
                b"\t",
                b"\n",
                b"\r",
                b"\r\n",
                b",",
                b"-1",
                b"x",
                b"4000000000",
                b"99999999999999999999",
                b"(0,1)",
                b"(1,2)",
                b"1.5",
                b"\xff",
                b"\x00",
                b"user",
                b"item",
                b"rating",
                b'"',
                b"::",
                b"1e3",
                b"nan",
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


def _parses_or_data_format_error(call):
    try:
        return call()
    except DataFormatError:
        return None
    except GnnoError as err:  # pragma: no cover - reported with the message
        raise AssertionError(
            f"expected a DataFormatError, got {type(err).__name__}: {err}"
        ) from None


@FAST
@given(train=text_bytes, test=text_bytes)
def test_lightgcn_loader_on_arbitrary_bytes(tmp_path_factory, train, test):
    folder = tmp_path_factory.mktemp("lgcn")
    (folder / "train.txt").write_bytes(train)
    (folder / "test.txt").write_bytes(test)
    out = _parses_or_data_format_error(lambda: load_lightgcn(folder))
    if out is not None:
        assert out[0].shape == out[1].shape


@FAST
@given(train=text_bytes, test=text_bytes, negative=text_bytes)
def test_ncf_loader_on_arbitrary_bytes(tmp_path_factory, train, test, negative):
    folder = tmp_path_factory.mktemp("ncf")
    prefix = folder / "d"
    (folder / "d.train.rating").write_bytes(train)
    (folder / "d.test.rating").write_bytes(test)
    (folder / "d.test.negative").write_bytes(negative)
    out = _parses_or_data_format_error(lambda: load_ncf(prefix))
    if out is not None:
        assert out.negatives.shape[0] == len(out.test_users)


@FAST
@given(data=text_bytes, header=st.booleans(), sep=st.sampled_from([",", "\t", "::", " "]))
def test_csv_loader_on_arbitrary_bytes(tmp_path_factory, data, header, sep):
    path = tmp_path_factory.mktemp("csv") / "log.csv"
    path.write_bytes(data)
    cols = ("user", "item") if header else (0, 1)
    out = _parses_or_data_format_error(
        lambda: load_csv(path, cols[0], cols[1], sep=sep, header=header)
    )
    if out is not None:
        assert len(out.users) == len(out.items)
