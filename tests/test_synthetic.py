"""``synthetic``: determinism, ground-truth consistency and realism."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from gnno import Interactions
from gnno.datasets import SyntheticData, synthetic
from gnno.exceptions import GnnoError, IdOutOfRangeError

# ``gnno.datasets.synthetic`` is the function; the module is reached this way.
synthetic_module = sys.modules["gnno.datasets.synthetic"]


def pairs_of(m: Interactions) -> set[tuple[int, int]]:
    users, items = m.to_pairs()
    return set(zip(users.tolist(), items.tolist(), strict=True))


@pytest.fixture(scope="module")
def default() -> SyntheticData:
    return synthetic()


def same(a: SyntheticData, b: SyntheticData) -> bool:
    return (
        a.train == b.train
        and a.test == b.test
        and a.liked == b.liked
        and np.array_equal(a.user_factors, b.user_factors)
        and np.array_equal(a.item_factors, b.item_factors)
        and np.array_equal(a.item_bias, b.item_bias)
    )


def test_deterministic_for_a_seed(default: SyntheticData) -> None:
    assert same(default, synthetic(seed=0))
    other = synthetic(seed=1)
    assert not same(default, other)
    assert default.train != other.train


def test_result_does_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    for kwargs in ({"n_users": 300, "n_items": 2500}, {"n_users": 300, "n_items": 300}):
        reference = synthetic(**kwargs, seed=5)
        monkeypatch.setattr(synthetic_module, "_BLOCK_SCORES", 1 << 12)
        assert same(reference, synthetic(**kwargs, seed=5))
        monkeypatch.undo()


def test_shapes_and_dtypes(default: SyntheticData) -> None:
    assert default.train.shape == default.test.shape == default.liked.shape == (2000, 1000)
    assert default.user_factors.shape == (2000, 16) and default.user_factors.dtype == np.float32
    assert default.item_factors.shape == (1000, 16) and default.item_bias.shape == (1000,)
    with pytest.raises(ValueError):
        default.item_bias[0] = 1.0


def test_ground_truth_is_consistent(default: SyntheticData) -> None:
    train, test, liked = pairs_of(default.train), pairs_of(default.test), pairs_of(default.liked)
    assert train <= liked and test <= liked
    assert not (train & test)
    assert pairs_of(default.false_negatives()) == liked - train
    assert test <= pairs_of(default.false_negatives())
    # liked-but-unobserved items exist beyond the test items
    assert default.false_negatives().nnz > 2 * default.test.nnz


def test_is_false_negative_matches_the_sets(default: SyntheticData) -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, default.n_users, 5000)
    items = rng.integers(0, default.n_items, 5000)
    liked, train = pairs_of(default.liked), pairs_of(default.train)
    expected = [
        (u, i) in liked and (u, i) not in train
        for u, i in zip(users.tolist(), items.tolist(), strict=True)
    ]
    assert default.is_false_negative(users, items).tolist() == expected
    test_users, test_items = default.test.to_pairs()
    assert default.is_false_negative(test_users, test_items).all()
    train_users, train_items = default.train.to_pairs()
    assert not default.is_false_negative(train_users, train_items).any()
    with pytest.raises(IdOutOfRangeError):
        default.is_false_negative([default.n_users], [0])


def test_every_user_has_two_training_items_a_test_item_and_a_negative(
    default: SyntheticData,
) -> None:
    assert default.train.user_counts.min() >= 2
    assert np.all(default.test.user_counts == 1)
    assert default.liked.user_counts.max() < default.n_items


@pytest.mark.parametrize("n_items", [600, 3000])
def test_liked_sets_are_the_top_items_by_affinity(n_items: int) -> None:
    # 600 items: exact selection over all items; 3000: through the probe items
    data = synthetic(n_users=150, n_items=n_items, mean_activity=30, seed=2)
    affinity = data.user_factors @ data.item_factors.T + data.item_bias
    for u in range(data.n_users):
        liked = np.zeros(n_items, dtype=bool)
        liked[data.liked.row(u)] = True
        # tolerance: the generator's float32 product may round differently
        assert affinity[u, ~liked].max() <= affinity[u, liked].min() + 1e-5


def test_liked_set_sizes_follow_activity(default: SyntheticData) -> None:
    observed = default.train.user_counts + default.test.user_counts
    ratio = default.liked.user_counts / observed
    assert np.all(ratio >= 1.0) and 2.4 <= np.median(ratio) <= 2.6


def test_popularity_is_skewed_and_activity_varied(default: SyntheticData) -> None:
    counts = np.sort(default.train.item_counts)[::-1]
    assert counts[: counts.size // 10].sum() > 0.30 * counts.sum()
    assert counts[-counts.size // 2 :].sum() < 0.25 * counts.sum()
    activity = default.train.user_counts
    assert 30 <= activity.mean() <= 50
    assert activity.std() / activity.mean() > 0.5
    assert activity.max() > 4 * np.median(activity)


def test_flat_popularity_removes_the_skew() -> None:
    flat = synthetic(popularity_skew=0.0)
    counts = np.sort(flat.train.item_counts)[::-1]
    assert counts[: counts.size // 10].sum() < 0.25 * counts.sum()


def test_the_factors_predict_held_out_items(default: SyntheticData) -> None:
    """The planted structure is learnable: affinity ranks a user's test item
    above a random non-training item far more often than chance."""
    rng = np.random.default_rng(1)
    users, items = default.test.to_pairs()
    others = rng.integers(0, default.n_items, users.size)
    fresh = ~default.train.contains(users, others) & (others != items)
    score = np.einsum("ij,ij->i", default.user_factors[users], default.item_factors[items])
    score += default.item_bias[items]
    other = np.einsum("ij,ij->i", default.user_factors[users], default.item_factors[others])
    other += default.item_bias[others]
    assert np.mean(score[fresh] > other[fresh]) > 0.9


def test_test_per_user_and_sizes() -> None:
    data = synthetic(n_users=50, n_items=40, mean_activity=10, test_per_user=3, seed=4)
    assert np.all(data.test.user_counts == 3)
    assert data.train.user_counts.min() >= 2
    none = synthetic(n_users=50, n_items=40, test_per_user=0)
    assert none.test.nnz == 0
    tiny = synthetic(n_users=5, n_items=4, mean_activity=100)
    assert np.all(tiny.train.user_counts == 2) and np.all(tiny.liked.user_counts == 3)


def test_larger_call_keeps_its_guarantees() -> None:
    data = synthetic(n_users=20_000, n_items=5_000, seed=1)
    assert data.train.shape == (20_000, 5_000)
    assert (data.train.user_counts >= 2).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, "n_users must be >= 1, got 0"),
        ({"n_items": 3, "test_per_user": 1}, "n_items must be >= 4, got 3"),
        ({"dim": 0}, "dim must be >= 1, got 0"),
        ({"mean_activity": 0}, r"mean_activity must be in \(0.0, inf\], got 0"),
        ({"popularity_skew": -1}, "popularity_skew .* got -1"),
        ({"test_per_user": -1}, "test_per_user must be >= 0, got -1"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"like_ratio": 0.5}, "like_ratio .* got 0.5"),
        ({"n_users": 10.0}, "n_users must be an integer, got 10.0"),
    ],
)
def test_invalid_parameters_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(GnnoError, match=message):
        synthetic(**kwargs)
