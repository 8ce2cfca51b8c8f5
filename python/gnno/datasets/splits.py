"""Id remapping, k-core filtering and train/test splits.

Splits work on distinct ``(user, item)`` pairs, so a pair is never in both
train and test even when a log repeats it. Everything random takes an
integer ``seed`` and gives the same result for the same seed and input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnno._arrays import check_seed, finite_float, positive_int
from gnno.datasets.records import InteractionLog
from gnno.exceptions import GnnoError
from gnno.interactions import Interactions

__all__ = ["remap_ids", "k_core", "leave_one_out", "ratio_split"]


def remap_ids(log: InteractionLog) -> InteractionLog:
    """The log with users and items renumbered densely (0-based, in order of
    their current id), dropping ids that no record uses. ``user_ids`` /
    ``item_ids`` map the new ids to the raw ids (to the current ids when the
    log had no map)."""
    _check_log(log)
    users, user_ids = _renumber(log.users, log.user_ids)
    items, item_ids = _renumber(log.items, log.item_ids)
    return InteractionLog(
        users=users,
        items=items,
        ratings=log.ratings,
        timestamps=log.timestamps,
        user_ids=user_ids,
        item_ids=item_ids,
    )


def k_core(log: InteractionLog, k: int = 5) -> InteractionLog:
    """The largest sub-log in which every user and every item has at least
    ``k`` distinct interactions (repeats of a pair count once), found by
    removing users and items below ``k`` until none is left; then
    ``remap_ids``. Records of the kept pairs are all kept."""
    _check_log(log)
    k = positive_int(k, "k", minimum=1)
    users, items = _distinct(log.users, log.items, log.n_items)
    keep_user = np.ones(log.n_users, dtype=bool)
    keep_item = np.ones(log.n_items, dtype=bool)
    while True:
        alive = keep_user[users] & keep_item[items]
        next_user = np.bincount(users[alive], minlength=log.n_users) >= k
        next_item = np.bincount(items[alive], minlength=log.n_items) >= k
        if np.array_equal(next_user, keep_user) and np.array_equal(next_item, keep_item):
            break
        keep_user, keep_item = next_user, next_item
    return remap_ids(log.filter(keep_user[log.users] & keep_item[log.items]))


def leave_one_out(
    data: InteractionLog | Interactions, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Holds out one item per user: the latest when ``data`` is an
    ``InteractionLog`` with timestamps (a pair's time is its latest record;
    ties broken at random by ``seed``), a uniformly random one otherwise.
    Users with fewer than 2 distinct items keep everything in train.

    Returns ``(train, test)``, disjoint, both of shape ``(n_users, n_items)``
    of ``data``.
    """
    seed = check_seed(seed)
    users, items, times, n_users, n_items = _pairs(data)
    rng = np.random.default_rng(seed)
    noise = rng.random(users.size)
    keys = (noise, users) if times is None else (noise, times, users)
    order = np.lexsort(keys)
    counts = np.bincount(users, minlength=n_users)
    # The last pair of each user's block in ``order`` is its latest (or random) one.
    last = np.cumsum(counts)[counts >= 2] - 1
    is_test = np.zeros(users.size, dtype=bool)
    is_test[order[last]] = True
    return _build(users, items, is_test, n_users, n_items)


def ratio_split(
    data: InteractionLog | Interactions, test_ratio: float = 0.2, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Random split per user: a user with ``n >= 2`` distinct items gives
    ``round_half_up(test_ratio * n)`` of them, clamped to ``[1, n - 1]``, to
    test (none when ``test_ratio == 0``); users with one item keep it in
    train. ``test_ratio`` is in ``[0, 1)``.

    Returns ``(train, test)``, disjoint, both of shape ``(n_users, n_items)``
    of ``data``.
    """
    test_ratio = finite_float(test_ratio, "test_ratio", low=0.0, high=1.0, high_open=True)
    seed = check_seed(seed)
    users, items, _, n_users, n_items = _pairs(data)
    counts = np.bincount(users, minlength=n_users)
    n_test = np.floor(test_ratio * counts + 0.5).astype(np.int64)
    if test_ratio > 0:
        n_test = np.clip(n_test, 1, np.maximum(counts - 1, 1))
    n_test[counts < 2] = 0

    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(users.size), users))
    starts = np.cumsum(counts) - counts
    sorted_users = users[order]
    rank = np.arange(users.size) - starts[sorted_users]
    is_test = np.zeros(users.size, dtype=bool)
    is_test[order[rank < n_test[sorted_users]]] = True
    return _build(users, items, is_test, n_users, n_items)


# ------------------------------------------------------------------ helpers
def _check_log(log: Any) -> None:
    if not isinstance(log, InteractionLog):
        raise GnnoError(f"log must be an InteractionLog, got {type(log).__name__}")


def _renumber(ids: np.ndarray, raw: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    used, dense = np.unique(ids, return_inverse=True)
    return dense.reshape(-1).astype(np.int64, copy=False), used if raw is None else raw[used]


def _distinct(users: np.ndarray, items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.unique(users * max(n_items, 1) + items)
    return keys // max(n_items, 1), keys % max(n_items, 1)


def _pairs(
    data: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int]:
    """Distinct pairs of ``data`` as ``(users, items, times, n_users,
    n_items)``; ``times`` (each pair's latest record) only for a log with
    timestamps."""
    if isinstance(data, Interactions):
        users, items = data.to_pairs()
        return users, items, None, data.n_users, data.n_items
    if not isinstance(data, InteractionLog):
        raise GnnoError(
            f"data must be an InteractionLog or an Interactions, got {type(data).__name__}"
        )
    n_users, n_items = data.n_users, data.n_items
    width = max(n_items, 1)
    keys = data.users * width + data.items
    if data.timestamps is None:
        unique = np.unique(keys)
        return unique // width, unique % width, None, n_users, n_items
    order = np.lexsort((data.timestamps, keys))
    sorted_keys = keys[order]
    # Last record of each key in (key, time) order = the pair's latest time.
    last = np.flatnonzero(np.append(sorted_keys[1:] != sorted_keys[:-1], True))
    unique = sorted_keys[last]
    return unique // width, unique % width, data.timestamps[order[last]], n_users, n_items


def _build(
    users: np.ndarray, items: np.ndarray, is_test: np.ndarray, n_users: int, n_items: int
) -> tuple[Interactions, Interactions]:
    train = Interactions.from_pairs(
        users[~is_test], items[~is_test], n_users=n_users, n_items=n_items
    )
    test = Interactions.from_pairs(users[is_test], items[is_test], n_users=n_users, n_items=n_items)
    return train, test
