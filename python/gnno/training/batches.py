"""Batch plans: which training positives each step of an epoch sees.

Both plans visit every training pair once per epoch, in an order derived
from ``(seed, epoch)`` alone, so an epoch can be replayed exactly.

* ``PairPlan`` (BPR, softmax): ``batch_size`` shuffled ``(user, item)`` pairs.
* ``GroupPlan`` (the group-wise loss): each user's shuffled positives cut
  into groups of at most ``size``; a batch is ``batch_size`` groups, with a
  mask when some group is short.

With ``steps``, an epoch is cut into exactly that many batches of near-equal
size (within one) instead of batches of ``batch_size``: data-parallel ranks,
which hold different amounts of data, then all take the same number of steps
(``gnno.training.distributed``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gnno.interactions import Interactions

#: One batch: users ``(B,)``, positives ``(B,)`` or ``(B, P)``, and the
#: mask of valid positives (``None``: all valid).
Batch = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def _cut(order: np.ndarray, batch_size: int, steps: int | None) -> Iterator[np.ndarray]:
    """``order`` in pieces of ``batch_size``, or in ``steps`` near-equal pieces."""
    if steps is not None:
        yield from np.array_split(order, steps)
        return
    for lo in range(0, len(order), batch_size):
        yield order[lo : lo + batch_size]


class PairPlan:
    """Shuffled training pairs, ``batch_size`` per step (or ``steps`` steps)."""

    def __init__(
        self, train: Interactions, batch_size: int, seed: int, *, steps: int | None = None
    ) -> None:
        self.users, self.items = train.to_pairs()
        self.batch_size = batch_size
        self.seed = seed
        self.steps = steps

    @property
    def n_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return -(-len(self.users) // self.batch_size)

    def batches(self, epoch: int) -> Iterator[Batch]:
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.users))
        for idx in _cut(order, self.batch_size, self.steps):
            yield self.users[idx], self.items[idx], None


class GroupPlan:
    """Groups of at most ``size`` positives of one user, ``batch_size`` groups
    per step (or ``steps`` steps)."""

    def __init__(
        self,
        train: Interactions,
        size: int,
        batch_size: int,
        seed: int,
        *,
        steps: int | None = None,
    ) -> None:
        self.users, self.items = train.to_pairs()
        self.counts = train.user_counts
        self.indptr = train.indptr
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.steps = steps

    @property
    def n_groups(self) -> int:
        return int((-(-self.counts // self.size)).sum())

    @property
    def n_steps(self) -> int:
        if self.steps is not None:
            return self.steps
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
        for idx in _cut(batch_order, self.batch_size, self.steps):
            m = mask[idx]
            yield group_user[idx], grid[idx], (None if m.all() else m)


__all__ = ["Batch", "PairPlan", "GroupPlan"]
