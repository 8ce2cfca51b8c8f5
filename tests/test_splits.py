"""``remap_ids``, ``k_core``, ``leave_one_out`` and ``ratio_split``."""

from __future__ import annotations

import numpy as np
import pytest

from gnno import Interactions
from gnno.datasets import InteractionLog, k_core, leave_one_out, ratio_split, remap_ids
from gnno.exceptions import GnnoError, NonFiniteError


def pairs_of(m: Interactions) -> set[tuple[int, int]]:
    users, items = m.to_pairs()
    return set(zip(users.tolist(), items.tolist(), strict=True))


def random_log(
    seed: int = 0, n: int = 3000, n_users: int = 200, n_items: int = 150
) -> InteractionLog:
    rng = np.random.default_rng(seed)
    # skewed users and items, with repeated pairs and repeated timestamps
    users = np.minimum(rng.zipf(1.6, n) - 1, n_users - 1)
    items = np.minimum(rng.zipf(1.4, n) - 1, n_items - 1)
    return InteractionLog(users=users, items=items, timestamps=rng.integers(0, 50, n))


# --------------------------------------------------------------- remap
def test_remap_ids_is_dense_and_keeps_raw_ids() -> None:
    log = InteractionLog(
        users=[4, 2, 4],
        items=[0, 3, 3],
        ratings=[1, 2, 3],
        user_ids=np.array(["a", "b", "c", "d", "e"], dtype=object),
        item_ids=np.array([10, 11, 12, 13]),
    )
    out = remap_ids(log)
    assert out.users.tolist() == [1, 0, 1] and out.items.tolist() == [0, 1, 1]
    assert out.user_ids.tolist() == ["c", "e"] and out.item_ids.tolist() == [10, 13]
    assert out.ratings.tolist() == [1, 2, 3]
    plain = remap_ids(InteractionLog(users=[7, 3], items=[5, 5]))
    assert plain.user_ids.tolist() == [3, 7] and plain.item_ids.tolist() == [5]
    assert plain.users.tolist() == [1, 0]


# --------------------------------------------------------------- k-core
def naive_k_core(pairs: set[tuple[int, int]], k: int) -> set[tuple[int, int]]:
    pairs = set(pairs)
    while True:
        users = {u for u, _ in pairs}
        items = {i for _, i in pairs}
        weak_u = {u for u in users if sum(1 for p in pairs if p[0] == u) < k}
        weak_i = {i for i in items if sum(1 for p in pairs if p[1] == i) < k}
        if not weak_u and not weak_i:
            return pairs
        pairs = {p for p in pairs if p[0] not in weak_u and p[1] not in weak_i}


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_k_core_holds_and_matches_a_naive_reference(k: int) -> None:
    log = random_log(seed=k, n=800, n_users=60, n_items=40)
    core = k_core(log, k=k)
    m = core.to_interactions()
    assert m.shape == (core.user_ids.size, core.item_ids.size)
    if m.nnz:
        assert m.user_counts.min() >= k and m.item_counts.min() >= k
    raw = {
        (int(core.user_ids[u]), int(core.item_ids[i]))
        for u, i in zip(core.users, core.items, strict=True)
    }
    original = set(zip(log.users.tolist(), log.items.tolist(), strict=True))
    assert raw == naive_k_core(original, k)


def test_k_core_counts_repeated_pairs_once_and_keeps_their_records() -> None:
    log = InteractionLog(
        users=[0, 0, 0, 0, 1, 1, 2, 2, 2],
        items=[0, 0, 0, 0, 0, 1, 0, 1, 1],
    )
    core = k_core(log, k=2)
    # user 0 has 4 records but one distinct item: dropped
    assert core.user_ids.tolist() == [1, 2]
    assert len(core) == 5  # user 2's repeated (2, 1) records stay
    assert core.to_interactions().nnz == 4


def test_k_core_parameters() -> None:
    with pytest.raises(GnnoError, match="k must be >= 1, got 0"):
        k_core(random_log(), k=0)
    with pytest.raises(GnnoError, match="k must be an integer"):
        k_core(random_log(), k=2.5)  # type: ignore[arg-type]
    with pytest.raises(GnnoError, match="InteractionLog"):
        k_core(Interactions.from_pairs([0], [0]))  # type: ignore[arg-type]


# --------------------------------------------------------- leave-one-out
def test_leave_one_out_holds_out_the_latest_pair() -> None:
    log = InteractionLog(
        users=[0, 0, 0, 0, 1, 1, 2],
        items=[1, 2, 3, 1, 1, 2, 3],
        # (0, 1) is rated at 5 and again at 10: its latest time is 10
        timestamps=[5, 9, 7, 10, 2, 1, 3],
    )
    train, test = leave_one_out(log)
    assert pairs_of(test) == {(0, 1), (1, 1)}
    assert pairs_of(train) == {(0, 2), (0, 3), (1, 2), (2, 3)}  # user 2 has one item
    assert train.shape == test.shape == (3, 4)


def test_leave_one_out_on_a_log_is_latest_by_time_for_every_user() -> None:
    log = random_log()
    train, test = leave_one_out(log, seed=3)
    latest: dict[tuple[int, int], int] = {}
    for u, i, t in zip(
        log.users.tolist(), log.items.tolist(), log.timestamps.tolist(), strict=True
    ):
        latest[(u, i)] = max(latest.get((u, i), t), t)
    for u, i in pairs_of(test):
        newest = max(t for (uu, _), t in latest.items() if uu == u)
        assert latest[(u, i)] == newest
    distinct = log.to_interactions()
    assert not (pairs_of(train) & pairs_of(test))
    assert pairs_of(train) | pairs_of(test) == pairs_of(distinct)
    assert np.array_equal(test.user_counts, (distinct.user_counts >= 2).astype(np.int64))


def test_leave_one_out_ties_are_broken_by_the_seed() -> None:
    log = InteractionLog(
        users=np.zeros(20, np.int64), items=np.arange(20), timestamps=np.ones(20, np.int64)
    )
    picks = {pairs_of(leave_one_out(log, seed=s)[1]).pop() for s in range(40)}
    assert len(picks) > 5
    assert leave_one_out(log, seed=7)[1] == leave_one_out(log, seed=7)[1]


def test_leave_one_out_on_interactions_is_random_and_deterministic() -> None:
    m = random_log().to_interactions()
    a = leave_one_out(m, seed=1)
    assert a[0] == leave_one_out(m, seed=1)[0] and a[1] == leave_one_out(m, seed=1)[1]
    assert a[1] != leave_one_out(m, seed=2)[1]
    assert np.array_equal(a[1].user_counts, (m.user_counts >= 2).astype(np.int64))
    assert a[0].nnz + a[1].nnz == m.nnz and not (pairs_of(a[0]) & pairs_of(a[1]))


def test_leave_one_out_without_timestamps_is_random() -> None:
    log = InteractionLog(users=np.zeros(30, np.int64), items=np.arange(30))
    picks = {pairs_of(leave_one_out(log, seed=s)[1]).pop() for s in range(30)}
    assert len(picks) > 5


# ----------------------------------------------------------- ratio split
@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.5, 0.9])
def test_ratio_split_rounding_rule_and_disjointness(ratio: float) -> None:
    m = random_log(n=5000).to_interactions()
    train, test = ratio_split(m, test_ratio=ratio, seed=4)
    n = m.user_counts
    expected = np.where(n >= 2, np.clip(np.floor(ratio * n + 0.5), 1, np.maximum(n - 1, 1)), 0)
    assert np.array_equal(test.user_counts, expected)
    assert np.all(train.user_counts[n >= 1] >= 1)
    assert not (pairs_of(train) & pairs_of(test))
    assert pairs_of(train) | pairs_of(test) == pairs_of(m)


def test_ratio_split_examples_of_the_rounding_rule() -> None:
    # 10 * 0.25 = 2.5 -> 3 (half up); 2 * 0.2 = 0.4 -> 0 -> 1 (gives one);
    # 3 * 0.9 = 2.7 -> 3 -> 2 (keeps one); a single item stays in train
    users = np.repeat([0, 1, 2, 3], [10, 3, 2, 1])
    items = np.concatenate([np.arange(10), np.arange(3), np.arange(2), [0]])
    m = Interactions.from_pairs(users, items)
    assert ratio_split(m, 0.25)[1].user_counts.tolist() == [3, 1, 1, 0]
    assert ratio_split(m, 0.2)[1].user_counts.tolist() == [2, 1, 1, 0]
    assert ratio_split(m, 0.9)[1].user_counts.tolist() == [9, 2, 1, 0]
    assert ratio_split(m, 0.0)[1].nnz == 0


def test_ratio_split_is_deterministic_and_seeded() -> None:
    log = random_log()
    a = ratio_split(log, 0.3, seed=5)
    b = ratio_split(log, 0.3, seed=5)
    c = ratio_split(log, 0.3, seed=6)
    assert a[0] == b[0] and a[1] == b[1]
    assert a[1] != c[1]
    assert a[0].shape == a[1].shape == (log.n_users, log.n_items)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"test_ratio": 1.0}, GnnoError, r"test_ratio must be in \[0.0, 1.0\), got 1.0"),
        ({"test_ratio": -0.1}, GnnoError, "test_ratio .* got -0.1"),
        ({"test_ratio": float("nan")}, NonFiniteError, "test_ratio"),
        ({"test_ratio": "0.2x"}, GnnoError, "test_ratio must be a number"),
        ({"seed": -1}, GnnoError, "seed must be >= 0, got -1"),
        ({"seed": 1.5}, GnnoError, "seed must be an integer, got 1.5"),
    ],
)
def test_split_parameters(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ratio_split(random_log(), **kwargs)


def test_splits_reject_other_inputs() -> None:
    with pytest.raises(GnnoError, match="InteractionLog or an Interactions"):
        leave_one_out([(0, 1)])  # type: ignore[arg-type]
    with pytest.raises(GnnoError, match="seed"):
        leave_one_out(random_log(), seed=-3)
