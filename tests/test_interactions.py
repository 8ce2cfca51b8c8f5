import pickle

import numpy as np
import pytest
import torch

import gnno
from gnno.exceptions import EmptyInputError, GnnoError, IdOutOfRangeError, ShapeError


def test_from_pairs_dedups_and_sorts_rows():
    m = gnno.Interactions.from_pairs([1, 0, 1, 1, 0], [3, 2, 0, 3, 2])
    assert m.shape == (2, 4) and m.nnz == 3
    assert m.indptr.tolist() == [0, 1, 3]
    assert m.indices.tolist() == [2, 0, 3]
    assert m.item_counts.tolist() == [1, 0, 1, 1]
    assert m.user_counts.tolist() == [1, 2]
    assert (1, 3) in m and (1, 2) not in m and (5, 0) not in m
    assert (np.int32(1), torch.tensor(3)) in m
    assert (1.0, 3) not in m and (1, 3.5) not in m and "13" not in m and (1, 3, 0) not in m


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a,
        lambda a: a.astype(np.int32),
        lambda a: a.astype(np.uint16),
        lambda a: np.asfortranarray(np.stack([a, a]))[0],  # non-contiguous view
        lambda a: a.tolist(),
        lambda a: torch.from_numpy(a),
    ],
)
def test_accepts_every_id_container(convert):
    users = np.array([0, 2, 2, 1, 0], dtype=np.int64)
    items = np.array([1, 0, 3, 3, 1], dtype=np.int64)
    m = gnno.Interactions.from_pairs(convert(users), convert(items))
    ref = gnno.Interactions.from_pairs(users, items)
    assert m == ref


def test_inputs_are_not_modified():
    users = np.array([3, 1, 1, 0])
    items = np.array([2, 2, 0, 9])
    u0, i0 = users.copy(), items.copy()
    gnno.Interactions.from_pairs(users, items)
    assert np.array_equal(users, u0) and np.array_equal(items, i0)


def test_scipy_round_trip():
    sp = pytest.importorskip("scipy.sparse")
    dense = np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0]])
    m = gnno.Interactions.from_pairs(sp.csr_matrix(dense))
    assert m.shape == (3, 3) and m.nnz == 3
    assert np.array_equal(m.to_scipy().toarray(), dense)


def test_from_scipy_refuses_what_is_not_a_sparse_matrix():
    with pytest.raises(GnnoError, match="needs a scipy.sparse matrix, got ndarray"):
        gnno.Interactions.from_scipy(np.eye(3))


def test_arrays_are_read_only_and_pickle():
    m = gnno.Interactions.from_pairs([0, 1], [1, 0])
    with pytest.raises(ValueError):
        m.indices[0] = 5
    assert pickle.loads(pickle.dumps(m)) == m


def test_contains_is_elementwise():
    m = gnno.Interactions.from_pairs([0, 0, 1], [0, 2, 1])
    assert m.contains([0, 0, 1, 1], [0, 1, 1, 2]).tolist() == [True, False, True, False]
    t = m.contains(torch.tensor([0]), torch.tensor([2]))
    assert isinstance(t, torch.Tensor) and bool(t[0])


@pytest.mark.parametrize(
    ("users", "items", "kwargs", "err", "needle"),
    [
        ([0, -1], [0, 1], {}, IdOutOfRangeError, "users[1]"),
        ([0, 1], [0, 7], {"n_items": 5}, IdOutOfRangeError, "item id 7"),
        ([0, 9], [0, 1], {"n_users": 5}, IdOutOfRangeError, "users[1]"),
        ([0, 1], [0], {}, ShapeError, "same length"),
        ([[0, 1]], [[0, 1]], {}, ShapeError, "1-dimensional"),
        ([0.5, 1.0], [0, 1], {}, ShapeError, "dtype float64"),
        ([True, False], [0, 1], {}, ShapeError, "dtype bool"),
        (["a"], [0], {}, ShapeError, "integer ids"),
    ],
)
def test_bad_input_names_the_value(users, items, kwargs, err, needle):
    with pytest.raises(err, match=None) as info:
        gnno.Interactions.from_pairs(users, items, **kwargs)
    assert needle in str(info.value)


def test_from_csr_validates_rows():
    with pytest.raises(gnno.exceptions.GnnoError, match="not strictly increasing"):
        gnno.Interactions.from_csr([0, 2], [3, 1], 1, 5)
    with pytest.raises(IdOutOfRangeError):
        gnno.Interactions.from_csr([0, 1], [5], 1, 5)


def test_empty_training_data_is_rejected_by_samplers():
    empty = gnno.Interactions.from_pairs([], [], n_users=3, n_items=4)
    assert empty.nnz == 0
    with pytest.raises(EmptyInputError):
        gnno.UniformSampler(empty)
