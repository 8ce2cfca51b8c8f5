"""The torch helpers every module shares: the model's device and a context
that runs a model for inference and puts it back as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def module_device(model: Any) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a
    module without any, or for a plain callable."""
    if isinstance(model, torch.nn.Module):
        for parameter in model.parameters():
            return parameter.device
        for buffer in model.buffers():
            return buffer.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Runs the block under ``torch.no_grad()`` with ``model`` in eval mode
    (when it is a module), then restores the mode it had, even on error."""
    was_training = isinstance(model, torch.nn.Module) and model.training
    if was_training:
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


__all__ = ["module_device", "eval_mode"]
