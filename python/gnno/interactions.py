"""``Interactions``: the user–item training matrix every sampler reads."""

from __future__ import annotations

import hashlib
import operator
from typing import Any

import numpy as np

from gnno import _gnno
from gnno._arrays import MAX_ID, as_ids, check_id_width, is_tensor, size_arg
from gnno.exceptions import EmptyInputError, GnnoError, IdOutOfRangeError, ShapeError


class Interactions:
    """Implicit feedback as a CSR matrix: rows are users, columns items.

    Built in Rust from ``(user, item)`` pairs; duplicates are dropped and each
    row is sorted. Ids are 0-based. Arrays it returns are read-only views.

    >>> train = Interactions.from_pairs([0, 0, 1], [2, 0, 1])
    >>> train.n_users, train.n_items, train.nnz
    (2, 3, 3)
    """

    __slots__ = ("_core", "_cache")

    def __init__(self, core: _gnno.Interactions) -> None:
        self._core = core
        self._cache: dict[str, Any] = {}

    # -- construction -------------------------------------------------
    @classmethod
    def from_pairs(
        cls,
        users: Any,
        items: Any = None,
        n_users: int | None = None,
        n_items: int | None = None,
    ) -> Interactions:
        """Builds from parallel id arrays (numpy of any int dtype and
        contiguity, lists, CPU or GPU torch tensors), or from one scipy
        sparse matrix passed as ``users`` (its shape gives the sizes).

        ``n_users`` / ``n_items`` default to the largest id + 1. Ids are in
        ``[0, 2**31 - 1]`` (the core's id width).
        """
        if items is None:
            if hasattr(users, "tocoo"):
                return cls.from_scipy(users)
            raise ShapeError("items is required unless users is a scipy.sparse matrix")
        u = as_ids(users, "users")
        i = as_ids(items, "items")
        if len(u) != len(i):
            raise ShapeError(
                f"users and items must have the same length, got {len(u)} and {len(i)}"
            )
        check_id_width(u, "users")
        check_id_width(i, "items")
        nu = None if n_users is None else size_arg(n_users, "n_users")
        ni = None if n_items is None else size_arg(n_items, "n_items")
        return cls(_gnno.Interactions.from_pairs(u, i, nu, ni))

    @classmethod
    def from_scipy(cls, matrix: Any) -> Interactions:
        """Builds from any ``scipy.sparse`` matrix; stored entries (also
        explicit zeros) count as interactions."""
        if not callable(getattr(matrix, "tocoo", None)):
            raise GnnoError(
                f"from_scipy needs a scipy.sparse matrix, got {type(matrix).__name__}; "
                "for id arrays use Interactions.from_pairs"
            )
        coo = matrix.tocoo()
        n_users, n_items = coo.shape
        return cls.from_pairs(coo.row, coo.col, n_users=int(n_users), n_items=int(n_items))

    @classmethod
    def from_csr(cls, indptr: Any, indices: Any, n_users: int, n_items: int) -> Interactions:
        """Builds from CSR arrays, checking them (sorted rows, ids in range)."""
        ip = as_ids(indptr, "indptr")
        ix = as_ids(indices, "indices")
        n_users = size_arg(n_users, "n_users")
        n_items = size_arg(n_items, "n_items")
        _check_csr(ip, ix, n_users, n_items)
        return cls(_gnno.Interactions.from_csr(ip, ix, n_users, n_items))

    # -- shape --------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self._core.n_users

    @property
    def n_items(self) -> int:
        return self._core.n_items

    @property
    def nnz(self) -> int:
        """Number of distinct (user, item) interactions."""
        return self._core.nnz

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return self.nnz

    # -- arrays (cached, read-only) ----------------------------------
    def _array(self, name: str) -> np.ndarray:
        arr = self._cache.get(name)
        if arr is None:
            arr = getattr(self._core, name)()
            arr.flags.writeable = False
            self._cache[name] = arr
        return arr

    @property
    def indptr(self) -> np.ndarray:
        """``int64[n_users + 1]``: user ``u``'s items are ``indices[indptr[u]:indptr[u+1]]``."""
        return self._array("indptr")

    @property
    def indices(self) -> np.ndarray:
        """``int32[nnz]``: item ids, sorted within each user."""
        return self._array("indices")

    @property
    def item_counts(self) -> np.ndarray:
        """``int64[n_items]``: how many users interacted with each item."""
        return self._array("item_counts")

    @property
    def user_counts(self) -> np.ndarray:
        """``int64[n_users]``: how many items each user interacted with."""
        arr = self._cache.get("user_counts")
        if arr is None:
            arr = np.diff(self.indptr)
            arr.flags.writeable = False
            self._cache["user_counts"] = arr
        return arr

    @property
    def fingerprint(self) -> str:
        """A hex digest (BLAKE2b, 128 bits) of the shape, ``indptr`` and
        ``indices``: equal data give equal fingerprints. Sampler states carry
        it, and a state only loads into a sampler built on the same data."""
        fp = self._cache.get("fingerprint")
        if fp is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(np.array(self.shape, dtype="<i8").tobytes())
            h.update(np.ascontiguousarray(self.indptr, dtype="<i8").tobytes())
            h.update(np.ascontiguousarray(self.indices, dtype="<i4").tobytes())
            fp = h.hexdigest()
            self._cache["fingerprint"] = fp
        return fp

    def row(self, user: int) -> np.ndarray:
        """The sorted items of ``user``."""
        u = int(user)
        if not 0 <= u < self.n_users:
            from gnno.exceptions import IdOutOfRangeError

            raise IdOutOfRangeError(f"user id {u} out of range for n_users={self.n_users}")
        return self.indices[self.indptr[u] : self.indptr[u + 1]]

    def to_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(users, items)`` int64 arrays, row-major."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), self.user_counts)
        return users, self.indices.astype(np.int64)

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csr_matrix`` of ones (needs scipy)."""
        import scipy.sparse as sp

        data = np.ones(self.nnz, dtype=np.float32)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    # -- membership ---------------------------------------------------
    def contains(self, users: Any, items: Any) -> Any:
        """Element-wise: is ``items[k]`` a training positive of ``users[k]``?"""
        out = self._core.contains(as_ids(users, "users"), as_ids(items, "items"))
        if is_tensor(users):
            import torch

            return torch.from_numpy(out).to(users.device)
        return out

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return False
        try:  # integers only (ints, numpy and torch integer scalars): 0.5 is no id
            u, i = operator.index(pair[0]), operator.index(pair[1])
        except TypeError:
            return False
        if not (0 <= u < self.n_users and 0 <= i < self.n_items):
            return False
        return bool(self._core.contains(np.array([u], np.int64), np.array([i], np.int64))[0])

    def require_nonempty(self, what: str = "interactions") -> Interactions:
        if self.nnz == 0:
            raise EmptyInputError(f"{what} has no interactions")
        return self

    # -- python protocol ------------------------------------------------
    def __repr__(self) -> str:
        density = self.nnz / max(1, self.n_users * self.n_items)
        return (
            f"Interactions(n_users={self.n_users}, n_items={self.n_items}, "
            f"nnz={self.nnz}, density={density:.4%})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interactions):
            return NotImplemented
        return (
            self.shape == other.shape
            and np.array_equal(self.indptr, other.indptr)
            and np.array_equal(self.indices, other.indices)
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        return {
            "indptr": np.asarray(self.indptr),
            "indices": np.asarray(self.indices),
            "n_users": self.n_users,
            "n_items": self.n_items,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        built = Interactions.from_csr(
            state["indptr"], state["indices"], state["n_users"], state["n_items"]
        )
        self._core = built._core
        self._cache = {}


def _check_csr(indptr: np.ndarray, indices: np.ndarray, n_users: int, n_items: int) -> None:
    """The CSR structure checks that must hold before the core indexes:
    ``indptr`` has ``n_users + 1`` entries, starts at 0, never decreases and
    ends at ``len(indices)``; item ids are in ``[0, n_items)``."""
    if len(indptr) != n_users + 1:
        raise ShapeError(f"indptr must have n_users + 1 = {n_users + 1} entries, got {len(indptr)}")
    if indptr[0] != 0:
        raise ShapeError(f"indptr[0] must be 0, got {int(indptr[0])}")
    steps = np.diff(indptr)
    if steps.size and steps.min() < 0:
        p = int(np.argmax(steps < 0))
        raise ShapeError(
            f"indptr must not decrease, got indptr[{p}] = {int(indptr[p])} > "
            f"indptr[{p + 1}] = {int(indptr[p + 1])}"
        )
    if indptr[-1] != len(indices):
        raise ShapeError(
            f"indptr[-1] must equal len(indices) = {len(indices)}, got {int(indptr[-1])}"
        )
    if indices.size:
        bad = (indices < 0) | (indices >= n_items)
        if bad.any():
            p = int(np.argmax(bad))
            raise IdOutOfRangeError(
                f"indices[{p}] = {int(indices[p])} out of range for n_items={n_items} "
                f"(ids are in [0, {MAX_ID}])"
            )
