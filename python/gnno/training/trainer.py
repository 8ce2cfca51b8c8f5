"""Training loop: data → sampler → model scores → loss, with evaluation,
early stopping, JSON-lines logs and exactly resumable checkpoints.

One epoch::

    sampler.set_epoch(epoch); sampler.refresh(model)     # and every refresh_every steps
    for batch in batches(seed, epoch):                   # BPR: pairs, group: user groups
        negatives = sampler.sample_for_pairs(...) / sampler.sample(...)
        loss(model(users, items)).backward(); optimizer.step()
    metrics = evaluator(model)                           # early stopping, best state
    checkpoint + one log line

With ``prefetch`` (on by default) a background thread makes the next
batches and draws their negatives while the model trains on the current
one. It makes the same sampler calls in the same order as the loop above and
never draws across a refresh (it stops at each refresh point and starts again
after it), so the run is bit-identical to ``prefetch=0``.

Everything random in an epoch is derived from ``(seed, epoch)`` (batch order,
groups) or lives in a state that the checkpoint holds (sampler stream and
memory, optimizer, torch RNG), so training 2 epochs and resuming for 2 more
gives the same weights as 4 epochs in one go.

Under ``torch.distributed`` (an initialised process group of more than one
rank) the Trainer trains one model with DistributedDataParallel, each rank
on its own ``ShardedSampler`` shard; see ``gnno.training.distributed``.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from gnno._arrays import finite_float, positive_int, staged, to_device
from gnno._prefetch import Prefetcher
from gnno._torch import eval_mode
from gnno.exceptions import GnnoError, NonFiniteError
from gnno.interactions import Interactions
from gnno.losses import (
    DEFAULT_MARGIN,
    bpr_loss,
    group_hinge_loss,
    group_softmax_loss,
    softmax_loss,
)
from gnno.samplers.protocol import SamplerLike, check_sampler
from gnno.scoring import unwrap_parallel
from gnno.training import checkpoint
from gnno.training import distributed as ddp
from gnno.training.batches import GroupPlan, PairPlan
from gnno.training.optim import Optimizers, penalty
from gnno.training.selection import BestModel, cpu_state

Evaluator = Callable[[torch.nn.Module], Mapping[str, float]]
Loss = Literal["bpr", "softmax", "group", "group_softmax"]
LOSSES: tuple[str, ...] = ("bpr", "softmax", "group", "group_softmax")
#: Losses over per-user groups of positives (``sampler.sample``); the
#: others take shuffled pairs (``sampler.sample_for_pairs``).
GROUP_LOSSES = ("group", "group_softmax")

# Settings that must match for a resumed run to continue the original one.
_RESUME_KEYS = (
    "loss",
    "lr",
    "weight_decay",
    "l2",
    "temperature",
    "batch_size",
    "seed",
    "refresh_every",
    "negatives_per_pair",
    "positives_per_group",
    "negatives_per_user",
    "margin",
    "metric",
)


class _Batch(NamedTuple):
    """One step's data: ``users`` and ``negatives`` as numpy (for the
    false-negative count), and ``(users, positives, negatives, mask)`` as
    CPU tensors staged for the device (pinned for CUDA)."""

    users: np.ndarray
    negatives: np.ndarray
    tensors: tuple[Any, ...]


@dataclass
class TrainResult:
    """What ``Trainer.fit`` returns.

    ``history``: one dict per epoch (the log lines). ``best_epoch`` /
    ``best_metrics``: the epoch (0-based) whose model was kept and its
    validation metrics (``None`` / empty without an evaluator: the last
    epoch's model is kept). ``epochs_run``: epochs completed, resumed ones
    included. ``stopped_early``: early stopping ended the run.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    metric: str | None = None
    epochs_run: int = 0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trainer:
    """Trains a scoring model with a gnno sampler.

    Args:
        model: a ``torch.nn.Module`` with ``forward(users (B,), items (B, K))
            -> (B, K)`` scores (``gnno.GMF``). Moved to ``device``. Embedding
            tables built with ``sparse=True`` are updated row-sparsely by
            ``RowAdam`` (SparseAdam's lazy Adam); every other parameter by Adam.
        train: the training ``Interactions`` (the sampler's data).
        sampler: a gnno sampler (``gnno.samplers.protocol.SamplerLike``:
            ``sample``, ``sample_for_pairs``, ``set_epoch``, ``refresh``,
            ``state_dict`` and ``load_state_dict``, so that a checkpoint
            resumes exactly).
        loss: ``"bpr"``: one batch = ``batch_size`` shuffled training pairs,
            each with ``negatives_per_pair`` negatives from
            ``sampler.sample_for_pairs``, BPR averaged over them.
            ``"softmax"``: the same batches, sampled softmax over the
            positive and its negatives at ``temperature``. ``"group"``: the
            group-wise hinge; an epoch cuts each user's shuffled positives
            into groups of at most ``positives_per_group`` (every pair is seen
            once per epoch), a batch is ``batch_size`` groups, and each group
            gets ``negatives_per_user`` negatives from ``sampler.sample``.
            ``"group_softmax"``: the same groups, each positive in a softmax
            (at ``temperature``) against all of its group's negatives.
        lr: the learning rate of both optimizers.
        weight_decay: Adam's L2 decay on every dense parameter (not allowed
            with sparse embeddings, which it would make dense).
        l2: weight of ``model.penalty(users, items)``, the squared norms of
            the embedding rows of the batch (users, positives and negatives),
            per example; the regulariser of the sparse path.
        temperature: the softmax loss's ``τ``.
        epochs: total number of epochs (a resumed run counts the epochs it
            already has).
        device: where the model trains (default ``cuda`` if available).
        seed: seeds the batch order and the groups (the sampler has its own).
        evaluator: ``evaluator(model) -> {metric: value}`` on validation data,
            run after every epoch; the model with the best ``metric`` (higher
            is better; default: the evaluator's first metric) is restored at
            the end.
        patience: stop after this many epochs without improvement of
            ``metric`` (``None``: never stop early).
        refresh_every: also call ``sampler.refresh(model)`` every this many
            steps within an epoch (it is always called at an epoch's start);
            ``None``: once per epoch.
        margin: the group hinge's ``γ``.
        log_path: JSON-lines file, one line per epoch (truncated by a fresh
            run, appended to by a resumed one).
        checkpoint_dir: where ``checkpoint.pt`` is written after every epoch.
        progress: show a tqdm bar per epoch.
        ground_truth: items each user actually likes that ``train`` does not
            hold (held-out or planted false negatives); when given, each
            epoch logs the share of drawn negatives that are in it
            (``false_negative_rate``).
        on_epoch_end: ``on_epoch_end(trainer, record)`` after every epoch
            (after evaluation, before the checkpoint); ``record`` is that
            epoch's log line, which the callback may extend with
            JSON-serialisable values. For observing the sampler or model
            (diagnostics, figures); it must not draw from the sampler, or
            a resumed run would differ from an uninterrupted one.
        prefetch: how many batches (with their negatives) a background
            thread keeps ready ahead of training (it works on one more);
            ``0`` draws in the training loop. Exact: the sampler sees the
            same calls in the same order, and the thread stops at every
            refresh. Used only while the sampler's draws read nothing but
            its own state (``sampler.draws_from_snapshot``; a score-based
            sampler bound to a model without ``user_vectors()`` /
            ``item_vectors()`` calls the live model in every draw and runs
            in the loop). If training stops mid-epoch (an exception), the
            sampler may have drawn up to ``prefetch + 1`` batches more than
            were trained on; checkpoints are taken between epochs, where
            nothing is ahead. The thread hides the sampler's time only where
            a core is free for it (a GPU run's host, or a CPU run with spare
            cores).

    Under ``torch.distributed`` with more than one rank (see
    ``gnno.training.distributed``): ``model`` is wrapped in
    ``DistributedDataParallel`` (unless it is already; ``self.model`` is the
    module inside), ``sampler`` must be a ``gnno.ShardedSampler`` of this
    world size and rank, ``batch_size`` is the global batch (each rank takes
    its share), evaluation, the log and printing happen on rank 0, and the
    checkpoint is ``checkpoint.pt`` plus ``checkpoint.rank{r}.pt`` per other
    rank in a directory all ranks share.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train: Interactions,
        sampler: SamplerLike,
        *,
        loss: Loss = "bpr",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        l2: float = 0.0,
        temperature: float = 1.0,
        batch_size: int = 1024,
        epochs: int = 20,
        device: str | torch.device | None = None,
        seed: int = 0,
        evaluator: Evaluator | None = None,
        metric: str | None = None,
        patience: int | None = None,
        refresh_every: int | None = None,
        negatives_per_pair: int = 1,
        positives_per_group: int = 8,
        negatives_per_user: int = 8,
        margin: float = DEFAULT_MARGIN,
        log_path: str | os.PathLike[str] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        ground_truth: Interactions | None = None,
        on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None,
        prefetch: int = 2,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise GnnoError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(train, Interactions):
            raise GnnoError(f"train must be a gnno.Interactions, got {type(train).__name__}")
        train.require_nonempty("train")
        self._dist = ddp.context()
        if self._dist is None:
            check_sampler(sampler, train)
        else:
            ddp.check_sampler(sampler, train, self._dist)
        _check_model_size(unwrap_parallel(model), train)
        if loss not in LOSSES:
            raise GnnoError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if ground_truth is not None and not isinstance(ground_truth, Interactions):
            raise GnnoError(
                f"ground_truth must be a gnno.Interactions, got {type(ground_truth).__name__}"
            )
        if evaluator is not None and not callable(evaluator):
            raise GnnoError("evaluator must be callable: evaluator(model) -> {metric: value}")
        if evaluator is None and (patience is not None or metric is not None):
            given = "patience" if patience is not None else "metric"
            raise GnnoError(
                f"{given} selects epochs on validation metrics: pass evaluator=, "
                "a function model -> {metric: value} on validation data"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise GnnoError(f"seed must be a non-negative integer, got {seed!r}")

        self.loss = loss
        self.lr = finite_float(lr, "lr", low=0.0, low_open=True)
        self.weight_decay = finite_float(weight_decay, "weight_decay", low=0.0)
        self.l2 = finite_float(l2, "l2", low=0.0)
        self.temperature = finite_float(temperature, "temperature", low=0.0, low_open=True)
        self.batch_size = positive_int(batch_size, "batch_size")
        self.epochs = positive_int(epochs, "epochs", minimum=0)
        self.seed = int(seed)
        self.patience = None if patience is None else positive_int(patience, "patience")
        self.refresh_every = (
            None if refresh_every is None else positive_int(refresh_every, "refresh_every")
        )
        self.negatives_per_pair = positive_int(negatives_per_pair, "negatives_per_pair")
        self.positives_per_group = positive_int(positives_per_group, "positives_per_group")
        self.negatives_per_user = positive_int(negatives_per_user, "negatives_per_user")
        self.margin = finite_float(margin, "margin", low=0.0)
        self.evaluator = evaluator
        # Under torch.distributed only rank 0 prints and logs.
        self.progress = bool(progress) and (self._dist is None or self._dist.is_main)
        self.ground_truth = ground_truth
        self.on_epoch_end = on_epoch_end
        self.prefetch = positive_int(prefetch, "prefetch", minimum=0)
        self.log_path = None if log_path is None else Path(log_path)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise GnnoError(f"device {device!r} is not a torch device: {err}") from None
        if self._dist is None:
            self.model = model.to(self.device)
            self._net = self.model  # what the training steps call
        else:
            self.model, self._net = ddp.wrap_model(model, self.device, self._dist)
        self.train_data = train
        self.sampler = sampler
        self.optimizer = Optimizers(self.model, self.lr, self.weight_decay)
        self._fused_penalty = "with_penalty" in inspect.signature(self.model.forward).parameters
        self.plan: PairPlan | GroupPlan | ddp.ShardPlan
        if self._dist is not None:
            self.plan = ddp.ShardPlan(
                train, loss, self.batch_size, self.positives_per_group, self.seed, self._dist
            )
        elif loss in GROUP_LOSSES:
            self.plan = GroupPlan(train, self.positives_per_group, self.batch_size, self.seed)
        else:
            self.plan = PairPlan(train, self.batch_size, self.seed)

        # Progress of the run; all of it goes into the checkpoint.
        self.epoch = 0  # epochs completed
        self.history: list[dict[str, Any]] = []
        self.best = BestModel(metric, self.patience)
        self._sampler_busy = 0.0

    @property
    def metric(self) -> str | None:
        """The validation metric that selects the model."""
        return self.best.metric

    @property
    def stopped_early(self) -> bool:
        return self.best.stopped

    # -- public API ---------------------------------------------------------
    def fit(self, resume: bool | str | os.PathLike[str] = False) -> TrainResult:
        """Trains up to ``epochs`` epochs and returns a ``TrainResult``.

        ``resume``: ``True`` continues from ``checkpoint_dir/checkpoint.pt``
        (which must exist), a path continues from that file. The model ends
        holding the best state (with an evaluator) or the last one.
        """
        if resume is not False:
            if resume is True:
                if self.checkpoint_dir is None:
                    raise GnnoError("resume=True needs a checkpoint_dir")
                path = self.checkpoint_dir / checkpoint.NAME
            else:
                path = Path(resume)
            self.load_checkpoint(path)
        elif self.log_path is not None and self.epoch == 0 and self._is_main:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("")

        while self.epoch < self.epochs and not self.stopped_early:
            record = self._run_epoch(self.epoch)
            self.epoch += 1
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, record)
            self.history.append(record)
            if self.checkpoint_dir is not None:
                self.save_checkpoint(self.checkpoint_dir / checkpoint.NAME)
            if self.log_path is not None and self._is_main:
                with self.log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")

        self.best.restore(self.model)
        return self.result()

    def result(self) -> TrainResult:
        return TrainResult(
            history=[dict(h) for h in self.history],
            best_epoch=self.best.epoch,
            best_metrics=dict(self.best.metrics),
            metric=self.metric,
            epochs_run=self.epoch,
            stopped_early=self.stopped_early,
        )

    def config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _RESUME_KEYS}

    @property
    def world_size(self) -> int:
        """The number of processes training the model (1 without torch.distributed)."""
        return 1 if self._dist is None else self._dist.world_size

    @property
    def _is_main(self) -> bool:
        return self._dist is None or self._dist.is_main

    def rng_state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (model and best state on the CPU).
        Under torch.distributed: this rank's sampler and RNG state."""
        rng = self.rng_state()
        return {
            "world_size": self.world_size,
            "config": self.config(),
            "data": _fingerprint(self.train_data),
            "epoch": self.epoch,
            "model": cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "history": self.history,
            "best": self.best.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continues the run ``state`` came from. Refuses a checkpoint of
        another version, other settings, other training data or another
        model shape, naming what differs; a refused checkpoint leaves the
        trainer (model, optimizer, sampler, selection, RNG) as it was."""
        checkpoint.check(state)
        ddp.check_world_size(state, self.world_size)
        try:
            saved = dict(state["config"])
            data = state["data"]
            epoch = int(state["epoch"])
            history, model_state, rng = state["history"], state["model"], state["rng"]
            optimizer_state, sampler_state = state["optimizer"], state["sampler"]
            best_state = state["best"]
        except (KeyError, TypeError, ValueError) as err:
            raise GnnoError(f"the checkpoint is damaged: {err!r}") from None
        history = checkpoint.check_history(history, epoch)
        rng = checkpoint.check_rng(rng)
        mine = self.config()
        for key in _RESUME_KEYS:
            if key == "metric" and mine[key] is None:
                continue
            if saved.get(key) != mine[key]:
                raise GnnoError(
                    f"cannot resume: the checkpoint has {key}={saved.get(key)!r}, "
                    f"this trainer {key}={mine[key]!r}"
                )
        if data != _fingerprint(self.train_data):
            raise GnnoError(
                "cannot resume: the checkpoint was trained on other data "
                f"(fingerprint {data!r}, this trainer's data {_fingerprint(self.train_data)!r})"
            )
        before = (cpu_state(self.model), self.optimizer.state_dict(), self.sampler.state_dict())
        try:
            try:
                self.model.load_state_dict(model_state)
            except (RuntimeError, KeyError, TypeError) as err:
                raise GnnoError(
                    f"cannot resume: the checkpoint's model does not fit: {err}"
                ) from None
            self.optimizer.load_state_dict(optimizer_state)
            self.sampler.load_state_dict(sampler_state)
            self.best.load_state_dict(best_state, self.model)
        except BaseException:
            model, optimizer, sampler = before
            self.model.load_state_dict(model)
            self.optimizer.load_state_dict(optimizer)
            self.sampler.load_state_dict(sampler)
            raise
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.epoch = epoch
        self.history = history

    def save_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Writes ``state_dict()`` atomically (a crash never leaves half a
        file). Under torch.distributed rank 0 writes ``path`` and every other
        rank its ``.rank{r}`` file beside it."""
        if self._dist is None:
            checkpoint.save(path, self.state_dict())
        else:
            ddp.save_checkpoint(self, Path(path), self._dist)

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        if self._dist is None:
            self.load_state_dict(checkpoint.load(path))
        else:
            self.load_state_dict(ddp.load_checkpoint(Path(path), self._dist))

    # -- one epoch --------------------------------------------------------------
    def _run_epoch(self, epoch: int) -> dict[str, Any]:
        start = time.perf_counter()
        t_sampling = 0.0
        t_other = 0.0  # false-negative bookkeeping: neither sampling nor training
        drawn = 0
        false_neg = 0

        self.model.train()
        self._sampler_busy = 0.0  # seconds inside sampler calls, in whichever thread
        t0 = time.perf_counter()
        self.sampler.set_epoch(epoch)
        self._refresh()
        t_sampling += time.perf_counter() - t0

        n_steps = self.plan.n_steps
        # Per-step sums stay on the device (no sync per step); float32 there,
        # float64 once on the CPU (some devices have no float64).
        loss_parts: list[torch.Tensor] = []
        n_terms = 0
        bar = _progress(n_steps, f"epoch {epoch + 1}/{self.epochs}", self.progress)
        with closing(self._batches_with_negatives(epoch, n_steps)) as batches:
            for step in itertools.count():
                # Waiting for a batch is sampling time: the draws (serial) or
                # what the prefetch thread has not hidden, and refreshes.
                t0 = time.perf_counter()
                batch = next(batches, None)
                t_sampling += time.perf_counter() - t0
                if batch is None:
                    break
                if self.ground_truth is not None:
                    t0 = time.perf_counter()
                    false_neg += self._count_false_negatives(batch.users, batch.negatives)
                    drawn += batch.negatives.size
                    t_other += time.perf_counter() - t0

                loss = self._step(*batch.tensors)
                loss_parts.append(loss.detach().float() * len(batch.users))
                n_terms += len(batch.users)
                if bar is not None:
                    bar.update(1)
                    if step % 50 == 0:
                        bar.set_postfix(loss=f"{loss.item():.4f}")
        if bar is not None:
            bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        loss_sum = torch.stack(loss_parts).cpu().double().sum().item() if loss_parts else math.nan
        if self._dist is not None:  # the whole epoch's, over every rank
            totals = ddp.all_sum([loss_sum, n_terms, false_neg, drawn], self.device, self._dist)
            loss_sum = totals[0]
            n_terms, false_neg, drawn = (int(x) for x in totals[1:])
        mean_loss = loss_sum / max(1, n_terms)
        if not math.isfinite(mean_loss):
            raise NonFiniteError(
                f"the training loss became {mean_loss} in epoch {epoch}; lower lr or check the data"
            )
        loop_seconds = time.perf_counter() - start

        t0 = time.perf_counter()
        metrics = self._evaluate()
        t_eval = time.perf_counter() - t0

        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": mean_loss,
            "steps": n_steps,
            "metrics": metrics,
        }
        if self.ground_truth is not None:
            record["false_negative_rate"] = false_neg / max(1, drawn)
        record["seconds"] = {
            "sampling": t_sampling,
            "training": loop_seconds - t_sampling - t_other,
            "evaluation": t_eval,
            "total": time.perf_counter() - start,
            # Time the sampler worked, overlapped with training or not.
            "sampler_busy": self._sampler_busy,
        }
        self.best.update(epoch, metrics, self.model)
        record["best_epoch"] = self.best.epoch
        if self.progress:
            _summary(record, self.epochs, self.metric)
        return record

    def _step(
        self, u: torch.Tensor, p: torch.Tensor, n: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        dev = self.device
        u, p, n = to_device(u, dev), to_device(p, dev), to_device(n, dev)
        if self.loss in GROUP_LOSSES:
            width = p.shape[1]
            scores, pen = self._scores(u, torch.cat([p, n], dim=1))
            pos_mask = None if mask is None else to_device(mask, dev)
            if self.loss == "group":
                loss = group_hinge_loss(
                    scores[:, :width], scores[:, width:], margin=self.margin, pos_mask=pos_mask
                )
            else:
                loss = group_softmax_loss(
                    scores[:, :width], scores[:, width:], self.temperature, pos_mask=pos_mask
                )
        else:
            # One forward over (positive, negatives): (B, 1 + K).
            scores, pen = self._scores(u, torch.cat([p.unsqueeze(1), n], dim=1))
            if self.loss == "bpr":
                loss = bpr_loss(scores[:, 0], scores[:, 1:])
            else:
                loss = softmax_loss(scores[:, 0], scores[:, 1:], self.temperature)
        objective = loss if pen is None else loss + self.l2 * pen
        self.optimizer.zero_grad()
        objective.backward()
        self.optimizer.step()
        return loss

    def _scores(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's scores and, with ``l2``, its penalty: from the same
        lookup when the model's forward takes ``with_penalty`` (GMF), else
        from ``model.penalty``."""
        if not self.l2:
            return self._net(users, items), None
        if self._fused_penalty:
            return self._net(users, items, with_penalty=True)
        return self._net(users, items), penalty(self.model, users, items)

    # -- batches and their negatives ----------------------------------------------
    def _batches_with_negatives(self, epoch: int, n_steps: int) -> Generator[_Batch, None, None]:
        """The epoch's batches with their negatives. Refreshes the sampler
        every ``refresh_every`` steps; each stretch between two refreshes is
        drawn ahead in a background thread when ``prefetch`` allows."""
        batches = self.plan.batches(epoch)
        every = self.refresh_every or max(1, n_steps)
        for lo in range(0, n_steps, every):
            if lo:
                self._refresh()
            stretch = self._draw(itertools.islice(batches, every))
            if self.prefetch and getattr(self.sampler, "draws_from_snapshot", False):
                with Prefetcher(stretch, self.prefetch) as ahead:
                    yield from ahead
            else:
                yield from stretch

    def _draw(
        self, batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    ) -> Iterator[_Batch]:
        dev = self.device
        for users, pos, pos_mask in batches:
            t0 = time.perf_counter()
            if self.loss in GROUP_LOSSES:
                neg = self.sampler.sample(users, self.negatives_per_user)
            else:
                neg = self.sampler.sample_for_pairs(users, pos, self.negatives_per_pair)
            neg = np.asarray(neg, dtype=np.int64)
            self._sampler_busy += time.perf_counter() - t0
            mask = None if pos_mask is None else staged(pos_mask, dev)
            yield _Batch(users, neg, (staged(users, dev), staged(pos, dev), staged(neg, dev), mask))

    def _count_false_negatives(self, users: np.ndarray, neg: np.ndarray) -> int:
        gt = self.ground_truth
        assert gt is not None
        u = np.repeat(users, neg.shape[1])
        j = neg.reshape(-1)
        # ground_truth may cover fewer users or items than train: those have none.
        inside = (u < gt.n_users) & (j < gt.n_items)
        if not inside.all():
            u, j = u[inside], j[inside]
        return int(np.count_nonzero(gt.contains(u, j)))

    def _refresh(self) -> None:
        # Scores for the sampler come from the model as it would be evaluated.
        t0 = time.perf_counter()
        try:
            with eval_mode(self.model):
                self.sampler.refresh(self.model)
        finally:
            self._sampler_busy += time.perf_counter() - t0

    def _evaluate(self) -> dict[str, float]:
        if self._dist is None:
            return self._evaluate_here()
        # Rank 0 evaluates; every rank gets its metrics (or its error).
        value: Any = None
        if self._dist.is_main:
            try:
                value = self._evaluate_here()
            except Exception as err:  # noqa: BLE001 - passed on, raised on every rank
                value = err
        return ddp.from_main(value, self._dist, self.device)

    def _evaluate_here(self) -> dict[str, float]:
        if self.evaluator is None:
            return {}
        with eval_mode(self.model):
            raw = self.evaluator(self.model)
        if not isinstance(raw, Mapping) or not raw:
            raise GnnoError("the evaluator must return a non-empty dict of metric name -> value")
        try:
            return {str(k): float(v) for k, v in raw.items()}
        except (TypeError, ValueError) as err:
            raise GnnoError(f"the evaluator must return numbers: {err}") from None


def train(
    model: torch.nn.Module,
    train: Interactions,
    sampler: SamplerLike,
    *,
    resume: bool | str | os.PathLike[str] = False,
    **options: Any,
) -> TrainResult:
    """Function form of ``Trainer(model, train, sampler, **options).fit(resume)``."""
    return Trainer(model, train, sampler, **options).fit(resume=resume)


def _fingerprint(data: Interactions) -> str:
    fp = getattr(data, "fingerprint", None)
    if isinstance(fp, str):
        return fp
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(data.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(data.indptr, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(data.indices, dtype=np.int64).tobytes())
    return h.hexdigest()


def _check_model_size(model: torch.nn.Module, train: Interactions) -> None:
    """A model with ``n_users`` / ``n_items`` must cover ``train``'s ids."""
    for name, need in (("n_users", train.n_users), ("n_items", train.n_items)):
        have = getattr(model, name, None)
        if isinstance(have, (int, np.integer)) and not isinstance(have, bool) and have < need:
            raise GnnoError(
                f"the model has {name}={int(have)} but the training data needs {need}: "
                "build the model on the training data's shape"
            )


def _summary(record: dict[str, Any], epochs: int, metric: str | None) -> None:
    from tqdm import tqdm

    parts = [f"epoch {record['epoch'] + 1}/{epochs}", f"loss {record['loss']:.4f}"]
    if metric is not None and metric in record["metrics"]:
        parts.append(f"{metric} {record['metrics'][metric]:.4f}")
    if "false_negative_rate" in record:
        parts.append(f"fn-rate {record['false_negative_rate']:.5f}")
    parts.append(f"{record['seconds']['total']:.1f}s")
    tqdm.write("  ".join(parts))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI).
    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=None)


__all__ = ["Trainer", "TrainResult", "train", "LOSSES", "GROUP_LOSSES"]
