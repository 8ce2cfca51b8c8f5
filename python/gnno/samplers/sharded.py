"""One rank's share of a sampler, for data-parallel training (DDP).

Users are dealt to ranks like cards: rank ``r`` of ``R`` holds the users
``u`` with ``u % R == r`` (local id ``u // R``) and all items, so every
user's state (candidate memory, gain, score history) lives on exactly one
rank and each rank's memory is about ``1/R`` of the whole::

    sampler = ShardedSampler("gain", train, seed=0)      # rank/world from torch.distributed
    model = DDP(GMF(n_users, n_items))
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        sampler.refresh(model)                            # this rank's users only
        users = sampler.users_for_epoch(epoch)            # this rank's users, shuffled
        ...                                               # batches of (users, positives)
        negatives = sampler.sample_for_pairs(users_b, positives_b)   # global ids in

Calls take and return global ids; a user of another rank is an error
(``NotInShardError``). Ranks hold different numbers of training pairs,
while DDP needs the same number of steps on every rank: cut each epoch to
the smallest rank's number of batches, or pad, as ``DistributedSampler``
does. Each rank's sampler has its own seed, derived from
``(seed, num_replicas, rank)``, so ranks draw independently and a rerun
draws the same. ``state_dict`` is per rank: each rank saves and loads its
own (gathering all of them on one rank would need the whole state there,
which is what sharding avoids); a state only loads into the same rank of
the same number of replicas. With one replica the sharded sampler draws
exactly what the plain sampler with the same seed draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gnno._arrays import as_floats, as_ids, positive_int
from gnno.exceptions import EmptyInputError, GnnoError, IdOutOfRangeError, NotInShardError
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler, _check_seed, _check_train, _same_ints
from gnno.scoring import require_model


def _is_str(value: Any, expected: str) -> bool:
    return isinstance(value, str) and value == expected


def rank_seed(seed: int, num_replicas: int, rank: int) -> int:
    """The seed of rank ``rank``'s sampler: ``seed`` itself for a single
    replica, else a 64-bit value derived from ``(seed, num_replicas, rank)``."""
    if num_replicas == 1:
        return seed
    state = np.random.SeedSequence([seed, num_replicas, rank]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


def shard_interactions(train: Interactions, num_replicas: int, rank: int) -> Interactions:
    """Rank ``rank``'s rows of ``train``: users ``rank, rank + R, ...`` as
    local users ``0, 1, ...``; items unchanged."""
    rows = np.arange(rank, train.n_users, num_replicas, dtype=np.int64)
    counts = train.user_counts[rows]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    # Position of each kept entry in train.indices: its row's start plus its
    # place within the row.
    at = np.repeat(train.indptr[rows] - indptr[:-1], counts)
    at += np.arange(int(indptr[-1]), dtype=np.int64)
    return Interactions.from_csr(indptr, train.indices[at], len(rows), train.n_items)


def _distributed_default() -> tuple[int, int]:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return 1, 0
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class ShardedSampler(Sampler):
    """A sampler that holds only rank ``rank``'s users (see module docs).

    Args:
        sampler: a name from ``gnno.samplers.SAMPLERS`` (``"gain"``, ...) or
            a factory ``factory(train, seed=..., **options) -> Sampler`` (a
            sampler class works).
        train: the whole training ``Interactions``; this rank's rows are
            copied out of it and it is not kept.
        num_replicas, rank: the number of ranks and this one; by default
            ``torch.distributed``'s world size and rank when it is
            initialised, else 1 and 0.
        seed: the run's seed (the same on every rank).
        **options: the inner sampler's options.

    ``self.train`` is this rank's shard (local user ids); ``self.shape`` is
    the whole data's shape.
    """

    def __init__(
        self,
        sampler: str | Callable[..., Any],
        train: Interactions,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        train = _check_train(train)
        if num_replicas is None or rank is None:
            world, me = _distributed_default()
            num_replicas = world if num_replicas is None else num_replicas
            rank = me if rank is None else rank
        self.num_replicas = positive_int(num_replicas, "num_replicas")
        self.rank = positive_int(rank, "rank", minimum=0)
        if self.rank >= self.num_replicas:
            raise GnnoError(f"rank must be in [0, {self.num_replicas}), got {self.rank}")
        self.shape = train.shape
        #: The fingerprint of the whole data (``Interactions.fingerprint``).
        self.fingerprint = train.fingerprint
        seed = _check_seed(seed)
        local = shard_interactions(train, self.num_replicas, self.rank)
        if local.nnz == 0:
            raise EmptyInputError(
                f"rank {self.rank} of {self.num_replicas} holds no interactions "
                f"({local.n_users} of {train.n_users} users)"
            )
        super().__init__(local, seed=seed)
        inner_seed = rank_seed(seed, self.num_replicas, self.rank)
        if isinstance(sampler, str):
            from gnno.samplers import build_sampler

            self.inner = build_sampler(sampler, local, seed=inner_seed, **options)
        elif callable(sampler):
            self.inner = sampler(local, seed=inner_seed, **options)
        else:
            raise GnnoError(f"sampler must be a name or a factory, got {type(sampler).__name__}")

    # -- ids -------------------------------------------------------------------
    @property
    def local_users(self) -> np.ndarray:
        """The global ids of this rank's users, ascending (local id order)."""
        return np.arange(self.rank, self.shape[0], self.num_replicas, dtype=np.int64)

    def users_for_epoch(self, epoch: int, shuffle: bool = True) -> np.ndarray:
        """This rank's users (global ids) in the order of ``epoch``: a
        permutation seeded by ``(seed, epoch, num_replicas, rank)``, or
        ascending with ``shuffle=False``. Over all ranks each user comes
        exactly once; ranks' counts differ by at most one."""
        users = self.local_users
        if not shuffle:
            return users
        epoch = positive_int(epoch, "epoch", minimum=0)
        rng = np.random.default_rng([self.seed, epoch, self.num_replicas, self.rank])
        return rng.permutation(users)

    def to_local(self, users: Any) -> np.ndarray:
        """Local ids of global ``users``; all must belong to this rank."""
        u = as_ids(users, "users")
        n_users, r, n = self.shape[0], self.rank, self.num_replicas
        bad = (u < 0) | (u >= n_users)
        if bad.any():
            p = int(np.argmax(bad))
            raise IdOutOfRangeError(
                f"user id {int(u[p])} out of range for n_users={n_users} (users[{p}])"
            )
        if n > 1:
            other = u % n != r
            if other.any():
                p = int(np.argmax(other))
                raise NotInShardError(
                    f"user {int(u[p])} (users[{p}]) belongs to rank {int(u[p]) % n} of {n}; "
                    f"this sampler holds rank {r}'s users (u % {n} == {r})"
                )
        return u // n

    def to_global(self, local: Any) -> np.ndarray:
        """Global ids of local user ids."""
        return as_ids(local, "local users") * self.num_replicas + self.rank

    # -- the sampler interface ---------------------------------------------------
    @property
    def needs_scores(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "needs_scores", False))

    @property
    def draws_from_snapshot(self) -> bool:
        return bool(getattr(self.inner, "draws_from_snapshot", False))

    def _sample(self, users: np.ndarray, k: int) -> np.ndarray:
        return self.inner.sample(self.to_local(users), k)

    def _sample_for_pairs(self, users: np.ndarray, positives: np.ndarray, k: int) -> np.ndarray:
        return self.inner.sample_for_pairs(self.to_local(users), positives, k)

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return int(self.inner.epoch)

    def refresh(self, model: Any = None) -> None:
        """Refreshes this rank's users from ``model`` (a DDP or DataParallel
        wrapper is looked through). Dot-product models hand over only this
        rank's rows of ``user_vectors()``; other models are called with
        global ids."""
        if not self.needs_scores:
            self.inner.refresh(model)
            return
        self.inner.refresh(_ShardModel(require_model(model), self.num_replicas, self.rank))

    def refresh_embeddings(self, user_vectors: Any, item_vectors: Any) -> None:
        """``user_vectors`` for all users (``n_users`` rows; this rank's are
        taken) or for this rank's users only (``len(local_users)`` rows, in
        that order); ``item_vectors`` for all items."""
        refresh = getattr(self.inner, "refresh_embeddings", None)
        if refresh is None:
            raise GnnoError(f"{type(self.inner).__name__} does not score with embeddings")
        rows = getattr(user_vectors, "shape", (None,))[0]
        n_local = self.train.n_users
        if rows == self.shape[0] and rows != n_local:
            user_vectors = user_vectors[self.rank :: self.num_replicas]
        elif rows != n_local:
            raise GnnoError(
                f"user_vectors must have {self.shape[0]} rows (all users) or {n_local} "
                f"(rank {self.rank}'s users), got {rows}"
            )
        refresh(as_floats(user_vectors, "user_vectors", 2), item_vectors)

    def diagnostics(self) -> dict[str, np.ndarray]:
        """The inner sampler's diagnostics; rows are this rank's users
        (``local_users`` order)."""
        diagnostics = getattr(self.inner, "diagnostics", None)
        if diagnostics is None:
            raise GnnoError(f"{type(self.inner).__name__} has no diagnostics")
        return diagnostics()

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """This rank's state: save one file per rank."""
        return {
            "sampler": type(self).__name__,
            "shape": self.shape,
            "fingerprint": self.fingerprint,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "seed": self.seed,
            "inner": self.inner.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a ``state_dict`` saved by the same rank of a run with the
        same number of replicas, data shape and seed."""
        if not isinstance(state, dict) or not _is_str(state.get("sampler"), type(self).__name__):
            raise GnnoError("state is not a ShardedSampler state")
        where = (state.get("num_replicas"), state.get("rank"))
        if not _same_ints(where, (self.num_replicas, self.rank)):
            raise GnnoError(
                f"state is for rank {where[1]} of {where[0]}, "
                f"this sampler is rank {self.rank} of {self.num_replicas}"
            )
        shape = state.get("shape")
        if not isinstance(shape, (tuple, list)) or not _same_ints(shape, self.shape):
            raise GnnoError(f"state is for data of shape {shape!r}, this sampler's is {self.shape}")
        if not _is_str(state.get("fingerprint"), self.fingerprint):
            raise GnnoError(
                f"state is for other data: its fingerprint is {state.get('fingerprint')!r}, "
                f"this sampler's data has {self.fingerprint!r}"
            )
        if not _same_ints((state.get("seed"),), (self.seed,)):
            raise GnnoError(
                f"state was saved with seed {state.get('seed')!r}, this has {self.seed}"
            )
        if "inner" not in state:
            raise GnnoError("state is missing 'inner' (the inner sampler's state)")
        self.inner.load_state_dict(state["inner"])

    def __reduce__(self) -> tuple:
        """Pickles the attributes; the inner sampler pickles its full state."""
        return (object.__new__, (type(self),), self.__dict__.copy())

    def __repr__(self) -> str:
        return (
            f"ShardedSampler({self.inner!r}, rank={self.rank}, "
            f"num_replicas={self.num_replicas}, shape={self.shape})"
        )


class _ShardModel:
    """The caller's model as the inner sampler sees it: local user ids in,
    this rank's rows of ``user_vectors()``."""

    def __init__(self, model: Any, num_replicas: int, rank: int) -> None:
        self.model = model
        self._n, self._r = num_replicas, rank
        uv = getattr(self.model, "user_vectors", None)
        iv = getattr(self.model, "item_vectors", None)
        if callable(uv) and callable(iv):
            # Sliced where the model lives: only this rank's rows are copied.
            self.user_vectors = lambda: uv()[rank::num_replicas]
            self.item_vectors = iv

    def __call__(self, users: Any, items: Any) -> Any:
        return self.model(users * self._n + self._r, items)

    def parameters(self) -> Iterator[Any]:
        params = getattr(self.model, "parameters", None)
        return iter(params()) if callable(params) else iter(())

    @property
    def training(self) -> Any:
        return getattr(self.model, "training", None)

    def eval(self) -> _ShardModel:
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> _ShardModel:
        self.model.train(mode)
        return self
