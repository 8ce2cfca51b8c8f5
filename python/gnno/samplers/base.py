"""The interface every gnno sampler shares.

A sampler is built on the training ``Interactions`` and a ``seed``. Inside a
torch loop::

    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        sampler.refresh(model)          # no-op for score-free samplers
        for users, positives in loader:
            negatives = sampler.sample_for_pairs(users, positives)   # (B, 1)

Negatives come back as ``torch.long`` on the device of ``users`` when
``users`` is a tensor, as ``int64`` numpy otherwise, with shape
``(len(users), k)`` (like ``torch.multinomial``). A negative is never a
training positive of its user. The same seed, epoch and sequence of calls
give the same negatives whatever the thread count.

Every constructor takes the data first and everything else by keyword
(``UniformSampler(train, seed=0)``); the option names are listed in
``DEVELOPERS.md`` ("Sampler options"). A sampler's ``state_dict`` carries the
fingerprint of its data and loads only into a sampler built on the same
data. Samplers pickle (e.g. into ``DataLoader`` workers started with
``spawn``): the copy continues the original's stream exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gnno._arrays import MAX_DRAWS, MAX_U64, as_ids, like, positive_int
from gnno.exceptions import GnnoError
from gnno.interactions import Interactions

#: The keys every sampler state holds (``ShardedSampler``'s has its own).
STATE_KEYS = ("sampler", "shape", "fingerprint", "seed", "epoch", "calls")


def _check_train(train: Any) -> Interactions:
    if not isinstance(train, Interactions):
        raise GnnoError(f"train must be a gnno.Interactions, got {type(train).__name__}")
    return train.require_nonempty("train")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise GnnoError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def _check_k(k: Any, n: int) -> int:
    k = positive_int(k, "k", maximum=MAX_DRAWS)
    if n * k > MAX_DRAWS:
        raise GnnoError(
            f"len(users) * k = {n} * {k} exceeds the {MAX_DRAWS} negatives one call may draw"
        )
    return k


def check_state_header(state: Any, cls_name: str, train: Interactions) -> dict[str, Any]:
    """Validates the common part of a sampler state before anything is
    changed: the class, the data's shape and fingerprint, and the stream
    position. Returns ``{"seed", "epoch", "calls"}`` as ints."""
    if not isinstance(state, dict):
        raise GnnoError(f"state must be a dict, got {type(state).__name__}")
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise GnnoError(f"state is missing {', '.join(map(repr, missing))} (keys: {sorted(state)})")
    name = state["sampler"]
    if not isinstance(name, str) or name != cls_name:
        raise GnnoError(f"state is for {name!r}, not {cls_name!r}")
    shape = state["shape"]
    if not isinstance(shape, (tuple, list)) or not _same_ints(shape, train.shape):
        raise GnnoError(f"state is for data of shape {shape!r}, this sampler's is {train.shape}")
    fingerprint = state["fingerprint"]
    if not isinstance(fingerprint, str) or fingerprint != train.fingerprint:
        raise GnnoError(
            f"state is for other data: its fingerprint is {fingerprint!r}, this sampler's "
            f"data has {train.fingerprint!r} (same shape, different interactions)"
        )
    stream = {}
    for key in ("seed", "epoch", "calls"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise GnnoError(f"state[{key!r}] must be an integer, got {value!r}")
        if not 0 <= value <= MAX_U64:
            raise GnnoError(f"state[{key!r}] must be in [0, 2**64), got {value!r}")
        stream[key] = int(value)
    return stream


def _same_ints(values: Any, expected: tuple[int, ...]) -> bool:
    """Whether ``values`` (a sequence from a state) equals ``expected``,
    without comparing arrays or other objects element-wise."""
    return len(values) == len(expected) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and int(v) == e
        for v, e in zip(values, expected, strict=True)
    )


def _rebuild(cls: type, train: Interactions, options: dict[str, Any], state: dict) -> Any:
    """Unpickles a sampler: rebuilds it with its options, then loads its state."""
    sampler = cls(train, seed=state["seed"], **options)
    sampler.load_state_dict(state)
    return sampler


class Sampler:
    """Base class: stream bookkeeping, input conversion and state dicts.

    Subclasses set ``self._core`` (a compiled sampler exposing ``sample``,
    ``set_epoch``, ``set_stream`` and the ``seed``/``epoch``/``calls``
    getters) and may override ``_sample``, ``_sample_for_pairs``,
    ``refresh`` and the ``_extra_state`` pair.
    """

    #: Whether ``refresh`` needs a model (score-based samplers).
    needs_scores: bool = False

    def __init__(self, train: Interactions, *, seed: int = 0) -> None:
        self.train = _check_train(train)
        self.seed = _check_seed(seed)
        self._core: Any = None
        #: The constructor's options (canonical names, without ``seed``):
        #: what pickling rebuilds the sampler with.
        self._options: dict[str, Any] = {}

    # -- the shared interface ------------------------------------------
    def sample(self, users: Any, k: int = 1) -> Any:
        """``k`` negatives for each user in ``users``: shape ``(len(users), k)``."""
        u = as_ids(users, "users")
        k = _check_k(k, len(u))
        return like(self._sample(u, k), users)

    def sample_for_pairs(self, users: Any, positives: Any, k: int = 1) -> Any:
        """``k`` negatives for each ``(users[b], positives[b])`` training pair,
        shape ``(B, k)``. Score-free samplers ignore the positive (it must
        be an item id in range); hard-negative samplers compare candidates
        against it, and refuse a positive that is not a training item of
        its user."""
        u = as_ids(users, "users")
        p = as_ids(positives, "positives")
        k = _check_k(k, len(u))
        if len(u) != len(p):
            from gnno.exceptions import ShapeError

            raise ShapeError(
                f"users and positives must have the same length, got {len(u)} and {len(p)}"
            )
        return like(self._sample_for_pairs(u, p, k), users)

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch ``epoch``: the draws of an epoch depend only on the
        seed, the epoch and the order of calls within it."""
        self._core.set_epoch(positive_int(epoch, "epoch", minimum=0, maximum=MAX_U64))

    @property
    def epoch(self) -> int:
        return int(self._core.epoch)

    @property
    def draws_from_snapshot(self) -> bool:
        """Whether draws read nothing but the sampler's own state (its stream
        position, memory and the last refresh's snapshot of the model), so
        that the draws between two refreshes may be made ahead of training,
        in another thread, with the same results (the Trainer's
        ``prefetch``). Score-free samplers: always."""
        return True

    def refresh(self, model: Any = None) -> None:  # noqa: B027 - optional hook
        """Updates score-based state from ``model``; nothing for this sampler."""

    # -- hooks -----------------------------------------------------------
    def _sample(self, users: np.ndarray, k: int) -> np.ndarray:
        return self._core.sample(users, k)

    def _sample_for_pairs(self, users: np.ndarray, positives: np.ndarray, k: int) -> np.ndarray:
        # Validate positives even where they are not used.
        if len(positives):
            self._check_items(positives, "positives")
        return self._sample(users, k)

    def _check_items(self, items: np.ndarray, name: str) -> None:
        bad = (items < 0) | (items >= self.train.n_items)
        if bad.any():
            from gnno.exceptions import IdOutOfRangeError

            p = int(np.argmax(bad))
            raise IdOutOfRangeError(
                f"item id {int(items[p])} out of range for n_items={self.train.n_items} ({name}[{p}])"
            )

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: the stream position
        and any learned state. Arrays are numpy; the dict pickles and
        ``torch.save``s."""
        state = {
            "sampler": type(self).__name__,
            "shape": self.train.shape,
            "fingerprint": self.train.fingerprint,
            "seed": int(self._core.seed),
            "epoch": int(self._core.epoch),
            "calls": int(self._core.calls),
        }
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a ``state_dict`` of a sampler of the same class built on
        the same data (same fingerprint) with the same options. A state that
        does not fit raises a ``GnnoError`` and changes nothing."""
        stream = check_state_header(state, type(self).__name__, self.train)
        try:
            self._load_extra_state(state)
        except GnnoError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise GnnoError(f"malformed {type(self).__name__} state: {err!r}") from None
        self._core.set_stream(stream["seed"], stream["epoch"], stream["calls"])
        self.seed = stream["seed"]

    # -- pickling --------------------------------------------------------------
    def __reduce__(self) -> tuple:
        """Pickles as the options, the data and the full state, so that the
        copy draws exactly what the original would draw next."""
        return (_rebuild, (type(self), self.train, dict(self._options), self.state_dict()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.train!r}, seed={self.seed})"
