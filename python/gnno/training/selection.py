"""Model selection on validation: the best epoch's weights and early stopping."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from gnno.exceptions import GnnoError, NonFiniteError


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model.state_dict()``."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class BestModel:
    """Keeps the weights of the epoch with the highest ``metric`` (higher is
    better) and counts the epochs since; ``stopped`` turns true after
    ``patience`` epochs without improvement (``None``: never)."""

    def __init__(self, metric: str | None = None, patience: int | None = None) -> None:
        self.metric = metric
        self.patience = patience
        self.epoch: int | None = None
        self.value: float | None = None
        self.metrics: dict[str, float] = {}
        self.state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped = False

    def update(self, epoch: int, metrics: Mapping[str, float], model: torch.nn.Module) -> None:
        """Records one epoch's validation ``metrics`` (nothing without any)."""
        if not metrics:
            return
        if self.metric is None:
            self.metric = next(iter(metrics))
        if self.metric not in metrics:
            raise GnnoError(
                f"metric {self.metric!r} is not among the evaluator's: {', '.join(metrics)}"
            )
        value = float(metrics[self.metric])
        if not math.isfinite(value):
            # NaN compares false with everything: it would be kept as the
            # best forever (first epoch) or silently never improve.
            raise NonFiniteError(
                f"the evaluator returned {self.metric}={value} after epoch {epoch + 1}; "
                "the metric that selects the model must be finite"
            )
        if self.value is None or value > self.value:
            self.value = value
            self.epoch = epoch
            self.metrics = dict(metrics)
            self.state = cpu_state(model)
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                self.stopped = True

    def restore(self, model: torch.nn.Module) -> None:
        """Loads the best weights into ``model`` (nothing if none was kept)."""
        if self.state is not None:
            model.load_state_dict(self.state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "epoch": self.epoch,
            "value": self.value,
            "metrics": self.metrics,
            "state": self.state,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
        }

    def load_state_dict(
        self, state: Mapping[str, Any], model: torch.nn.Module | None = None
    ) -> None:
        """Restores ``state_dict()``'s output, all of it or (on any error)
        none of it. With ``model``, the kept weights must fit it: their
        names and shapes are ``model``'s (else ``restore`` would fail only
        after training)."""
        damaged = "the checkpoint's model-selection state is damaged"
        try:
            metric = state["metric"]
            epoch = None if state["epoch"] is None else int(state["epoch"])
            value = None if state["value"] is None else float(state["value"])
            metrics = {str(k): float(v) for k, v in dict(state["metrics"]).items()}
            weights = None if state["state"] is None else dict(state["state"])
            bad_epochs = int(state["bad_epochs"])
            stopped = bool(state["stopped"])
        except (KeyError, TypeError, ValueError) as err:
            raise GnnoError(f"{damaged}: {err!r}") from None
        if metric is not None and not isinstance(metric, str):
            raise GnnoError(f"{damaged}: metric must be a name or None, got {metric!r}")
        if (epoch is None) != (value is None) or (epoch is None) != (weights is None):
            raise GnnoError(
                f"{damaged}: a best epoch ({epoch!r}), its value ({value!r}) and its weights "
                "must be all present or all absent"
            )
        if (epoch is not None and epoch < 0) or bad_epochs < 0:
            raise GnnoError(
                f"{damaged}: epoch {epoch!r} and bad_epochs {bad_epochs!r} must not be negative"
            )
        if weights is not None and model is not None:
            _check_fits(weights, model, damaged)
        self.metric, self.epoch, self.value, self.metrics = metric, epoch, value, metrics
        self.state, self.bad_epochs, self.stopped = weights, bad_epochs, stopped


def _check_fits(weights: Mapping[str, Any], model: torch.nn.Module, damaged: str) -> None:
    """Refuses ``weights`` unless they have exactly ``model``'s tensor
    names and shapes, naming the first difference."""
    mine = model.state_dict()
    missing = sorted(set(mine) - set(weights))
    extra = sorted(set(weights) - set(mine))
    if missing or extra:
        raise GnnoError(
            f"{damaged}: the best weights do not fit the model (missing {missing}, "
            f"unexpected {extra})"
        )
    for name, tensor in mine.items():
        saved = weights[name]
        if not isinstance(saved, torch.Tensor) or saved.shape != tensor.shape:
            got = tuple(saved.shape) if isinstance(saved, torch.Tensor) else type(saved).__name__
            raise GnnoError(
                f"{damaged}: the best weights' {name} is {got}, the model's {tuple(tensor.shape)}"
            )


__all__ = ["BestModel", "cpu_state"]
