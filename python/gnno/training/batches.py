"""Batch plans: which training positives each step of an epoch sees.

Both plans visit every training pair once per epoch, in an order derived
from ``(seed, epoch)`` alone, so an epoch can be replayed exactly.

* ``PairPlan`` (BPR, softmax): ``batch_size`` shuffled ``(user, item)`` pairs.
* ``GroupPlan`` (the group-wise loss): each user's shuffled positives cut
  into groups of at most ``size``; a batch is ``batch_size`` groups, with a
  mask when some group is short.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gnno.interactions import Interactions

#: One batch: users ``(B,)``, positives ``(B,)`` or ``(B, P)``, and the
#: mask of valid positives (``None``: all valid).
Batch = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


class PairPlan:
    """Shuffled training pairs, ``batch_size`` per step."""

    def __init__(self, train: Interactions, batch_size: int, seed: int) -> None:
        self.users, self.items = train.to_pairs()
        self.batch_size = batch_size
        self.seed = seed

    @property
    def n_steps(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def batches(self, epoch: int) -> Iterator[Batch]:
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.users))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            yield self.users[idx], self.items[idx], None


class GroupPlan:
    """Groups of at most ``size`` positives of one user, ``batch_size`` groups per step."""

    def __init__(self, train: Interactions, size: int, batch_size: int, seed: int) -> None:
        self.users, self.items = train.to_pairs()
        self.counts = train.user_counts
        self.indptr = train.indptr
        self.size = size
        self.batch_size = batch_size
        self.seed = seed

    @property
    def n_groups(self) -> int:
        return int((-(-self.counts // self.size)).sum())

    @property
    def n_steps(self) -> int:
        return -(-self.n_groups // self.batch_size)

    def batches(self, epoch: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, epoch, 1])
        size = self.size
        # Shuffle each user's positives (pairs are row-major), then cut each
        # row into groups of at most `size`.
        order = np.lexsort((rng.random(len(self.users)), self.users))
        items = self.items[order]
        users = self.users[order]
        position = np.arange(len(users), dtype=np.int64) - self.indptr[users]
        per_user = -(-self.counts // size)
        first_group = np.cumsum(per_user) - per_user
        group = first_group[users] + position // size
        n_groups = int(per_user.sum())
        grid = np.zeros((n_groups, size), dtype=np.int64)
        mask = np.zeros((n_groups, size), dtype=bool)
        grid[group, position % size] = items
        mask[group, position % size] = True
        group_user = np.repeat(np.arange(len(self.counts), dtype=np.int64), per_user)
        # Only groups of one user can be short, so a mask-free batch is the
        # common case when every row is full.
        batch_order = rng.permutation(n_groups)
        for lo in range(0, n_groups, self.batch_size):
            idx = batch_order[lo : lo + self.batch_size]
            m = mask[idx]
            yield group_user[idx], grid[idx], (None if m.all() else m)


__all__ = ["Batch", "PairPlan", "GroupPlan"]
