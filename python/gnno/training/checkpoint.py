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


def save(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Writes ``state`` (plus format and version) so that a crash never
    leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
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
    check(state, str(path))
    return state


def check(state: Any, where: str = "the checkpoint") -> None:
    """Refuses anything but a gnno training checkpoint of this version."""
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        raise GnnoError(f"{where} is not a gnno training checkpoint")
    version = state.get("version")
    if version != VERSION:
        raise GnnoError(
            f"{where} has checkpoint version {version!r}; this gnno reads version {VERSION} "
            "(resume it with the gnno that wrote it, or start a fresh run)"
        )


__all__ = ["NAME", "FORMAT", "VERSION", "save", "load", "check"]
