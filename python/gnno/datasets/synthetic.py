"""A synthetic implicit-feedback dataset whose false negatives are known.

The model, per seed:

1. Latent factors: ``user_factors`` ``[n_users, dim]`` and ``item_factors``
   ``[n_items, dim]`` with i.i.d. N(0, 1/sqrt(dim)) entries (variance
   1/sqrt(dim)), so that an affinity ``u . v`` has variance 1.
2. Popularity: items get a random Zipf rank ``r`` (0 = most popular) and a
   log-popularity ``-popularity_skew * log(1 + r)``.
3. Activity: user activity ``a_u`` (observed items) is log-normal with mean
   about ``mean_activity`` and log-scale ``activity_sigma``, rounded and
   clipped to ``[test_per_user + 2, n_items - 1]``.
4. Preference: user ``u`` *likes* the ``L_u = ceil(like_ratio * a_u)`` items
   (at most ``n_items - 1``) of highest affinity
   ``u . v_i + item_bias[i]``, with ``item_bias = popularity_bias *
   log-popularity``.
5. Exposure: the user *observes* ``a_u`` of its liked items, drawn without
   replacement with weights ``popularity ** exposure_bias``.
6. Hold-out: ``test_per_user`` observed items per user, chosen uniformly,
   form ``test``; the other observed items form ``train``.

The false negatives of ``train`` are the liked items outside it: the
liked-but-unobserved ones and the test items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnno._arrays import check_seed, finite_float, positive_int
from gnno.interactions import Interactions

__all__ = ["SyntheticData", "synthetic"]

# Scores of one block of users are ``block_rows x n_items`` float32 values;
# about 1 M of them (4 MB) keep a block in cache, which made the product and
# the scans over it several times faster than 16 MB blocks.
_BLOCK_SCORES = 1 << 20
# Items whose scores estimate each user's top-L threshold (see _liked_pairs).
_PROBE_ITEMS = 1024


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """The output of ``synthetic``.

    - ``train``, ``test``, ``liked``: ``Interactions`` of shape ``(n_users,
      n_items)``; ``train`` and ``test`` are disjoint subsets of ``liked``.
    - ``user_factors``: ``float32[n_users, dim]``; ``item_factors``:
      ``float32[n_items, dim]``; ``item_bias``: ``float32[n_items]``. The
      affinity of user ``u`` for item ``i`` is ``user_factors[u] @
      item_factors[i] + item_bias[i]``; ``liked`` holds each user's top items
      by it (as computed in float32).
    """

    train: Interactions
    test: Interactions
    liked: Interactions
    user_factors: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def false_negatives(self) -> Interactions:
        """Liked items outside ``train`` (liked-but-unobserved and test
        items), as an ``Interactions`` of shape ``(n_users, n_items)``."""
        users, items = self.liked.to_pairs()
        unseen = ~self.train.contains(users, items)
        return Interactions.from_pairs(
            users[unseen], items[unseen], n_users=self.n_users, n_items=self.n_items
        )

    def is_false_negative(self, users: Any, items: Any) -> np.ndarray:
        """``bool`` array, element-wise: does ``users[k]`` like ``items[k]``
        without it being in ``train``?"""
        return np.asarray(self.liked.contains(users, items)) & ~np.asarray(
            self.train.contains(users, items)
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticData(n_users={self.n_users}, n_items={self.n_items}, "
            f"train={self.train.nnz}, test={self.test.nnz}, liked={self.liked.nnz})"
        )


def synthetic(
    n_users: int = 2000,
    n_items: int = 1000,
    dim: int = 16,
    mean_activity: float = 40,
    popularity_skew: float = 1.0,
    test_per_user: int = 1,
    seed: int = 0,
    *,
    like_ratio: float = 2.5,
    activity_sigma: float = 0.8,
    popularity_bias: float = 0.25,
    exposure_bias: float = 0.5,
) -> SyntheticData:
    """Generates a dataset with a planted preference structure (see the
    module docstring for the model).

    ``popularity_skew`` is the Zipf exponent of item popularity,
    ``like_ratio`` the liked-set size per observed item, ``activity_sigma``
    the log-normal spread of user activity, ``popularity_bias`` how much
    popularity raises affinity and ``exposure_bias`` how much it raises the
    chance of observing a liked item. Every user gets at least 2 training
    items and at least one item it does not like. Deterministic for a seed;
    memory and time grow with ``n_users * n_items`` in blocks of users, never
    as one dense matrix.
    """
    n_users = positive_int(n_users, "n_users", minimum=1)
    test_per_user = positive_int(test_per_user, "test_per_user", minimum=0)
    n_items = positive_int(n_items, "n_items", minimum=test_per_user + 3)
    dim = positive_int(dim, "dim", minimum=1)
    mean_activity = finite_float(mean_activity, "mean_activity", low=0.0, low_open=True)
    popularity_skew = finite_float(popularity_skew, "popularity_skew", low=0.0)
    like_ratio = finite_float(like_ratio, "like_ratio", low=1.0)
    activity_sigma = finite_float(activity_sigma, "activity_sigma", low=0.0)
    popularity_bias = finite_float(popularity_bias, "popularity_bias")
    exposure_bias = finite_float(exposure_bias, "exposure_bias")
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)

    scale = dim**-0.25
    user_factors = rng.normal(0.0, scale, (n_users, dim)).astype(np.float32)
    item_factors = rng.normal(0.0, scale, (n_items, dim)).astype(np.float32)
    rank = rng.permutation(n_items)
    log_popularity = -popularity_skew * np.log1p(rank)
    item_bias = (popularity_bias * log_popularity).astype(np.float32)

    mu = math.log(mean_activity) - activity_sigma**2 / 2
    activity = np.rint(rng.lognormal(mu, activity_sigma, n_users)).astype(np.int64)
    activity = np.clip(activity, test_per_user + 2, n_items - 1)
    n_liked = np.minimum(np.ceil(like_ratio * activity).astype(np.int64), n_items - 1)
    probe = None
    if n_items > _PROBE_ITEMS:
        probe = np.sort(rng.choice(n_items, _PROBE_ITEMS, replace=False))
    shape = {"n_users": n_users, "n_items": n_items}
    liked = Interactions.from_pairs(
        *_liked_pairs(user_factors, item_factors, item_bias, n_liked, probe), **shape
    )

    # Random draws happen here, over the liked pairs in (user, item) order,
    # so that they do not depend on how the users were blocked above.
    # Exposure: Gumbel-top-k draws ``activity[u]`` of u's liked items without
    # replacement, with probability proportional to popularity ** exposure_bias.
    users, items = liked.to_pairs()
    keys = exposure_bias * log_popularity[items] + rng.gumbel(size=users.size)
    seen = _top_k_grouped(users, keys, activity, n_users)
    users, items = users[seen], items[seen]
    held_out = _top_k_grouped(
        users, rng.random(users.size), np.full(n_users, test_per_user), n_users
    )
    return SyntheticData(
        train=Interactions.from_pairs(users[~held_out], items[~held_out], **shape),
        test=Interactions.from_pairs(users[held_out], items[held_out], **shape),
        liked=liked,
        user_factors=_read_only(user_factors),
        item_factors=_read_only(item_factors),
        item_bias=_read_only(item_bias),
    )


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _top_k_per_row(rows: np.ndarray, values: np.ndarray, k: np.ndarray, n_rows: int) -> np.ndarray:
    """``bool`` mask over entries grouped by row (``rows`` ascending, values
    of ``rows`` in ``[0, n_rows)``): in each row ``j``, the ``k[j]`` entries
    of highest ``values`` (all of them when the row has fewer; among equal
    values the earlier entry wins).

    The rows are scattered into a padded ``[n_rows, widest]`` matrix and
    sorted along the row to read each row's ``k``-th largest value; entries
    at or above it are kept. That is much faster than sorting the flat
    entries by two keys; the rare row where ties at the threshold keep too
    many is redone with a stable argsort.
    """
    counts = np.bincount(rows, minlength=n_rows)
    width = int(counts.max()) if rows.size else 0
    if width == 0:
        return np.zeros(rows.size, dtype=bool)
    starts = np.cumsum(counts) - counts
    position = np.arange(rows.size) - starts[rows]
    padded = np.full((n_rows, width), -np.inf, dtype=values.dtype)
    padded[rows, position] = values
    padded.sort(axis=1)
    take = np.minimum(k, counts)
    # Rows taking nothing read a dummy column, then get a threshold none pass.
    threshold = padded[np.arange(n_rows), np.minimum(width - take, width - 1)]
    threshold[take == 0] = np.inf
    keep = values >= threshold[rows]
    for j in np.flatnonzero(np.bincount(rows[keep], minlength=n_rows) > take):
        segment = slice(starts[j], starts[j] + counts[j])
        best = np.argsort(-values[segment], kind="stable")[: take[j]]
        keep[segment] = False
        keep[starts[j] + best] = True
    return keep


def _top_k_grouped(
    groups: np.ndarray, values: np.ndarray, k: np.ndarray, n_groups: int
) -> np.ndarray:
    """``_top_k_per_row`` for entries grouped by ``groups`` (ascending, in
    ``[0, n_groups)``), run over chunks of groups so that the padded matrix
    stays small."""
    counts = np.bincount(groups, minlength=n_groups)
    ends = np.cumsum(counts)
    step = max(1, _BLOCK_SCORES // max(int(counts.max(initial=0)), 1))
    keep = np.zeros(groups.size, dtype=bool)
    for lo in range(0, n_groups, step):
        hi = min(lo + step, n_groups)
        a, b = int(ends[lo] - counts[lo]), int(ends[hi - 1])
        keep[a:b] = _top_k_per_row(groups[a:b] - lo, values[a:b], k[lo:hi], hi - lo)
    return keep


def _probe_rank(need: int, n_probe: int, n_items: int) -> int:
    """How far down the probe scores to set a threshold so that at least
    ``need`` of all ``n_items`` pass it with high probability: the expected
    rank plus three standard deviations (binomial) and a small margin."""
    expected = need * n_probe / n_items
    return min(n_probe, math.ceil(expected + 3.0 * math.sqrt(expected) + 3.0))


def _liked_pairs(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    n_liked: np.ndarray,
    probe: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(users, items)``: the exact top-``n_liked[u]`` items of every user by
    affinity, computed in blocks of users.

    Selecting them over all items per row would cost far more than the scores
    themselves, so each block first sets a per-row threshold from the scores
    of ``probe`` (a fixed subset of items; all items when ``None``), low
    enough that the needed items pass it with high probability. Only the
    items above it are ranked; the rare row with too few gets its exact
    threshold from its full row. Users are processed in order of
    ``n_liked``, so that one probe rank suits a whole block.
    """
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    # Affinity = [u, 1] . [v, bias]: the bias rides along in the product.
    users_aug = np.hstack([user_factors, np.ones((n_users, 1), np.float32)])
    items_aug_t = np.ascontiguousarray(np.hstack([item_factors, item_bias[:, None]]).T)
    order = np.argsort(n_liked, kind="stable")
    sorted_need = n_liked[order]
    max_rows = max(1, _BLOCK_SCORES // n_items)
    out_users, out_items = [], []
    lo = 0
    while lo < n_users:
        # Users of a block need at most 1.5x the fewest items any of them
        # needs, so a rank that suits the most demanding over-selects little.
        cap = int(np.searchsorted(sorted_need, 1.5 * sorted_need[lo], side="right"))
        hi = min(lo + max_rows, max(cap, lo + 1))
        users = order[lo:hi]
        lo = hi
        need = n_liked[users]
        scores = users_aug[users] @ items_aug_t  # float32 [len(users), n_items]
        if probe is None:
            rank = int(need.max())
            floor = np.partition(scores, n_items - rank, axis=1)[:, n_items - rank]
        else:
            rank = _probe_rank(int(need.max()), probe.size, n_items)
            sample = scores[:, probe]
            floor = np.partition(sample, probe.size - rank, axis=1)[:, probe.size - rank]
        flat = np.flatnonzero(scores >= floor[:, None])
        short = np.bincount(flat // n_items, minlength=users.size) < need
        if short.any():
            for j in np.flatnonzero(short):
                floor[j] = np.partition(scores[j], n_items - need[j])[n_items - need[j]]
            flat = np.flatnonzero(scores >= floor[:, None])
        rows, items = np.divmod(flat, n_items)
        top = _top_k_per_row(rows, scores.ravel()[flat], need, users.size)
        out_users.append(users[rows[top]])
        out_items.append(items[top])
    return np.concatenate(out_users), np.concatenate(out_items)
