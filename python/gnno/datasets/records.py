"""``InteractionLog``: raw interaction records, before they become a matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gnno.exceptions import IdOutOfRangeError, ShapeError
from gnno.interactions import Interactions


def _frozen(arr: np.ndarray) -> np.ndarray:
    """A read-only view: the log cannot be changed through it, and the
    caller's array keeps its own flags."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _ids(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ShapeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=False)
    if out.min() < 0:
        raise IdOutOfRangeError(f"{name} must be non-negative, found {int(out.min())}")
    return out


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """Interaction records, one per event (duplicates of a ``(user, item)``
    pair are kept, e.g. repeated ratings or plays).

    Fields (all 1-D, ``n`` = number of records; arrays are read-only):

    - ``users``, ``items``: ``int64[n]`` dense 0-based ids.
    - ``ratings``: ``float32[n]`` explicit ratings, or ``None``.
    - ``timestamps``: ``int64[n]`` event times (e.g. Unix seconds), or ``None``.
    - ``user_ids``: ``[n_users]`` the raw id of each dense user id (int64 for
      integer raw ids, object array of ``str`` otherwise), or ``None`` when the
      ids were never remapped. Same for ``item_ids``.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        users = _ids(self.users, "users")
        items = _ids(self.items, "items")
        n = users.size
        if items.size != n:
            raise ShapeError(f"items has {items.size} entries, users has {n}")
        fields: dict[str, np.ndarray | None] = {"users": users, "items": items}
        for name, dtype in (("ratings", np.float32), ("timestamps", np.int64)):
            value = getattr(self, name)
            if value is not None:
                arr = np.asarray(value)
                if arr.shape != (n,):
                    raise ShapeError(f"{name} must have shape ({n},), got {arr.shape}")
                if arr.size and arr.dtype.kind not in ("iuf" if dtype is np.float32 else "iu"):
                    raise ShapeError(f"{name} has unsupported dtype {arr.dtype}")
                value = arr.astype(dtype, copy=False)
            fields[name] = value
        for name, dense in (("user_ids", users), ("item_ids", items)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value)
                if value.ndim != 1:
                    raise ShapeError(f"{name} must be 1-dimensional, got shape {value.shape}")
                if dense.size and dense.max() >= value.size:
                    raise IdOutOfRangeError(
                        f"{name} maps {value.size} ids but the log uses id {int(dense.max())}"
                    )
            fields[name] = value
        for name, value in fields.items():
            object.__setattr__(self, name, None if value is None else _frozen(value))

    def __len__(self) -> int:
        return int(self.users.size)

    @property
    def n_users(self) -> int:
        """``len(user_ids)`` when the ids map is kept, else the largest user
        id + 1 (0 for an empty log)."""
        if self.user_ids is not None:
            return int(self.user_ids.size)
        return int(self.users.max()) + 1 if self.users.size else 0

    @property
    def n_items(self) -> int:
        """``len(item_ids)`` when the ids map is kept, else the largest item
        id + 1 (0 for an empty log)."""
        if self.item_ids is not None:
            return int(self.item_ids.size)
        return int(self.items.max()) + 1 if self.items.size else 0

    def to_interactions(
        self, n_users: int | None = None, n_items: int | None = None
    ) -> Interactions:
        """The implicit-feedback matrix of the log (duplicates collapse).
        Sizes default to ``n_users`` / ``n_items`` of the log."""
        return Interactions.from_pairs(
            self.users,
            self.items,
            n_users=self.n_users if n_users is None else n_users,
            n_items=self.n_items if n_items is None else n_items,
        )

    def filter(self, mask: Any) -> InteractionLog:
        """The records where ``mask`` (``bool[len(self)]``) is true. Ids and
        their maps are unchanged; use ``remap_ids`` to make them dense again."""
        m = np.asarray(mask)
        if m.dtype != np.bool_ or m.shape != (len(self),):
            raise ShapeError(
                f"mask must be a boolean array of shape ({len(self)},), "
                f"got dtype {m.dtype} and shape {m.shape}"
            )
        return InteractionLog(
            users=self.users[m],
            items=self.items[m],
            ratings=None if self.ratings is None else self.ratings[m],
            timestamps=None if self.timestamps is None else self.timestamps[m],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
        )

    def __repr__(self) -> str:
        extras = [name for name in ("ratings", "timestamps") if getattr(self, name) is not None]
        return (
            f"InteractionLog(records={len(self)}, n_users={self.n_users}, "
            f"n_items={self.n_items}, fields={extras})"
        )
