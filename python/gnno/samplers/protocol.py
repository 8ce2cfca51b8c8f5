"""What the Trainer (and any loop that checkpoints) needs of a sampler."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from gnno.exceptions import GnnoError
from gnno.interactions import Interactions


@runtime_checkable
class SamplerLike(Protocol):
    """The sampler interface: every gnno sampler has it, and so may any
    other object. ``state_dict`` / ``load_state_dict`` make a resumed run
    draw exactly what an uninterrupted one would."""

    def sample(self, users: Any, k: int = 1) -> Any: ...

    def sample_for_pairs(self, users: Any, positives: Any, k: int = 1) -> Any: ...

    def set_epoch(self, epoch: int) -> None: ...

    def refresh(self, model: Any = None) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Any) -> None: ...


_METHODS = ("sample", "sample_for_pairs", "set_epoch", "refresh", "state_dict", "load_state_dict")


def check_sampler(sampler: Any, train: Interactions) -> None:
    """Refuses an object without the sampler interface, and a sampler built
    on data that lacks some of ``train``'s interactions (its negatives could
    be ``train``'s positives). A sampler built on more than ``train`` is
    accepted: it never draws the extra items either (items to keep out of
    the negatives, such as known false negatives)."""
    missing = [m for m in _METHODS if not callable(getattr(sampler, m, None))]
    if missing:
        raise GnnoError(
            f"sampler must have {', '.join(f'{m}()' for m in missing)} "
            f"(a gnno sampler); {type(sampler).__name__} has not"
        )
    own = getattr(sampler, "train", None)
    if not isinstance(own, Interactions) or own is train:
        return
    if own.shape != train.shape:
        raise GnnoError(
            f"the sampler was built on data of shape {own.shape}, train has shape {train.shape}"
        )
    if np.array_equal(own.indptr, train.indptr) and np.array_equal(own.indices, train.indices):
        return
    users, items = train.to_pairs()
    lacking = np.flatnonzero(~own.contains(users, items))
    if lacking.size:
        u, i = int(users[lacking[0]]), int(items[lacking[0]])
        raise GnnoError(
            f"the sampler was built on other data than train: it lacks {lacking.size} of "
            f"train's interactions (the first: user {u}, item {i}), so its negatives could "
            "be train's positives"
        )


__all__ = ["SamplerLike", "check_sampler"]
