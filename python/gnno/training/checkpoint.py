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


__all__ = ["NAME", "FORMAT", "RANK_FORMAT", "VERSION", "rank_path", "save", "load", "check"]
