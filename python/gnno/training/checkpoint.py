"""The Trainer's checkpoint file: one ``torch.save`` of a dict that names
its format and version, written atomically and checked on load."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gnno.exceptions import GnnoError

NAME = "checkpoint.pt"
FORMAT = "gnno-trainer"
#: Version 2: sparse optimizers (a list of optimizer states), the data's
#: fingerprint, best-model tracking under its own key.
VERSION = 2


#: The file each rank but 0 of a distributed run writes next to ``NAME``
#: (its sampler and RNG state; ``gnno.training.distributed``).
RANK_FORMAT = "gnno-trainer-rank"


def rank_path(path: str | os.PathLike[str], rank: int) -> Path:
    """``checkpoint.pt`` -> ``checkpoint.rank{rank}.pt``, in the same folder."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def save(path: str | os.PathLike[str], state: Mapping[str, Any], *, format: str = FORMAT) -> None:
    """Writes ``state`` (plus format and version) so that a crash never
    leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": format, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike[str], *, format: str = FORMAT) -> dict[str, Any]:
    """Reads a checkpoint written by ``save`` (any unreadable, foreign or
    other-version file is a ``GnnoError``)."""
    path = Path(path)
    if not path.is_file():
        raise GnnoError(f"no checkpoint at {path}")
    try:
        # Our own file: it holds numpy arrays (sampler state), which the
        # weights-only unpickler refuses.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure
        raise GnnoError(f"cannot read checkpoint {path}: {err}") from None
    check(state, str(path), format=format)
    return state


def check(state: Any, where: str = "the checkpoint", *, format: str = FORMAT) -> None:
    """Refuses anything but a gnno training checkpoint of this version."""
    if not isinstance(state, Mapping) or state.get("format") != format:
        kind = "rank file" if format == RANK_FORMAT else "checkpoint"
        raise GnnoError(f"{where} is not a gnno training {kind}")
    version = state.get("version")
    if version != VERSION:
        raise GnnoError(
            f"{where} has checkpoint version {version!r}; this gnno reads version {VERSION} "
            "(resume it with the gnno that wrote it, or start a fresh run)"
        )


#: What every epoch's record holds (``Trainer`` writes more), and the
#: timings under its ``seconds``: what a resumed run's summary reads.
RECORD_KEYS = ("epoch", "loss", "steps", "seconds")
SECONDS_KEYS = ("sampling", "training", "evaluation", "total")


def check_history(history: Any, epoch: int) -> list[dict[str, Any]]:
    """A copy of a checkpoint's per-epoch records, refused (naming the
    record) unless there is one for each of the ``epoch`` epochs run, in
    order, each with the keys of :data:`RECORD_KEYS` and numeric timings."""
    damaged = "the checkpoint is damaged"
    if epoch < 0:
        raise GnnoError(f"{damaged}: epoch is {epoch}, it must not be negative")
    try:
        records = [dict(h) for h in history]
    except (TypeError, ValueError) as err:
        raise GnnoError(f"{damaged}: history must be a list of dicts ({err!r})") from None
    if len(records) != epoch:
        raise GnnoError(
            f"{damaged}: it has {len(records)} epoch record(s) for {epoch} epoch(s) run"
        )
    for index, record in enumerate(records):
        missing = [key for key in RECORD_KEYS if key not in record]
        if missing:
            raise GnnoError(f"{damaged}: history[{index}] has no {', '.join(missing)}")
        if record["epoch"] != index:
            raise GnnoError(
                f"{damaged}: history[{index}] is for epoch {record['epoch']!r}, expected {index}"
            )
        seconds = record["seconds"]
        if not isinstance(seconds, Mapping) or not all(
            isinstance(seconds.get(key), (int, float)) for key in SECONDS_KEYS
        ):
            raise GnnoError(
                f"{damaged}: history[{index}]['seconds'] must give {', '.join(SECONDS_KEYS)} "
                f"as numbers, got {seconds!r}"
            )
    return records


def check_rng(rng: Any) -> dict[str, torch.Tensor]:
    """A checkpoint's RNG states, refused unless each is a ``uint8`` tensor
    (what ``torch.set_rng_state`` takes)."""
    damaged = "the checkpoint's RNG state is damaged"
    try:
        states = dict(rng)
    except (TypeError, ValueError) as err:
        raise GnnoError(f"{damaged}: {err!r}") from None
    if "torch" not in states:
        raise GnnoError(f"{damaged}: it has no 'torch' state")
    for name, value in states.items():
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
            got = (
                f"{value.dtype} of shape {tuple(value.shape)}"
                if isinstance(value, torch.Tensor)
                else type(value).__name__
            )
            raise GnnoError(f"{damaged}: {name!r} must be a 1-d uint8 tensor, got {got}")
    return states


__all__ = [
    "NAME",
    "FORMAT",
    "RANK_FORMAT",
    "VERSION",
    "RECORD_KEYS",
    "SECONDS_KEYS",
    "rank_path",
    "save",
    "load",
    "check",
    "check_history",
    "check_rng",
]
