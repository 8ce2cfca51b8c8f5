"""Training under ``torch.distributed``: one model, DistributedDataParallel,
one ``ShardedSampler`` shard per rank.

When a process group with more than one rank is initialised, ``Trainer``:

* wraps the model in ``DistributedDataParallel`` (unless it already is) and
  keeps the module inside for everything else (the L2 penalty, refreshing
  the sampler, evaluation, checkpoints): DDP's constructor copies rank 0's
  weights to every rank, and its all-reduce keeps them equal;
* needs a ``gnno.ShardedSampler`` of the same world size and rank: rank
  ``r`` trains on the pairs (or user groups) of its users ``u % R == r``
  and draws their negatives from its own shard;
* gives every rank the same number of steps, which DDP needs: the epoch has
  as many steps as one process would take with ``batch_size`` (the global
  batch), and each rank cuts its shard into that many near-equal batches
  (about ``batch_size / R`` each; fewer steps only when a rank holds fewer
  pairs than that). DDP averages the ranks' gradients, so one step follows
  the mean loss over the global batch (each rank's pairs weighted by
  ``1 / (R * its batch)``, which differs from the exact global mean only as
  much as the ranks' batch sizes differ, by the shards' imbalance);
* evaluates on rank 0 only and broadcasts the metrics, so every rank takes
  the same early-stopping decision and keeps the same best epoch (the
  weights being equal, every rank restores the same ones); the epoch's loss
  and false-negative counts are summed over the ranks; rank 0 alone writes
  the log and prints (``on_epoch_end`` runs on every rank, with its own
  sampler);
* checkpoints: rank 0 writes ``checkpoint.pt`` (model, optimizers, best
  model, history, its sampler and RNG state, and ``world_size``) and rank
  ``r > 0`` writes its sampler and RNG state to ``checkpoint.rank{r}.pt``
  next to it, so the directory must be shared by all ranks (on several
  nodes: a shared file system). A resume loads the common part from
  ``checkpoint.pt`` and each rank's own state from its file, and refuses
  another world size.

Sparse gradients: DDP all-reduces sparse embedding gradients with gloo (the
CPU backend), and a step equals the one-process step on the same global
batch, so ``GMF(sparse=True)`` trains under DDP on CPUs with RowAdam.
NCCL (GPUs) has no sparse all-reduce: on NCCL sparse embedding tables are
switched to dense gradients (Adam), with a warning.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gnno.exceptions import GnnoError
from gnno.interactions import Interactions
from gnno.samplers.protocol import check_sampler as _check_sampler
from gnno.scoring import unwrap_parallel
from gnno.training import checkpoint
from gnno.training.batches import Batch, GroupPlan, PairPlan
from gnno.training.optim import sparse_parameters

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gnno.training.trainer import Trainer


@dataclass(frozen=True)
class Dist:
    """This process's place in the process group."""

    world_size: int
    rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> Dist | None:
    """The process group's world size, rank and backend when one with more
    than one rank is initialised, else ``None`` (one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size()
    if world <= 1:
        return None
    return Dist(world, dist.get_rank(), str(dist.get_backend()))


def world_size() -> int:
    """The number of training processes (1 without torch.distributed)."""
    ctx = context()
    return 1 if ctx is None else ctx.world_size


# -- setting the model and the sampler up ------------------------------------------


def check_sampler(sampler: Any, train: Interactions, ctx: Dist) -> None:
    """Refuses anything but a ``ShardedSampler`` of this world size and rank
    built on ``train``."""
    from gnno.samplers.sharded import ShardedSampler, shard_interactions

    if not isinstance(sampler, ShardedSampler):
        raise GnnoError(
            f"under torch.distributed (world size {ctx.world_size}) the sampler must be a "
            f"gnno.ShardedSampler holding this rank's users, got {type(sampler).__name__}: "
            "build it as ShardedSampler(name, train, seed=...)"
        )
    if (sampler.num_replicas, sampler.rank) != (ctx.world_size, ctx.rank):
        raise GnnoError(
            f"the ShardedSampler is rank {sampler.rank} of {sampler.num_replicas}, "
            f"this process is rank {ctx.rank} of {ctx.world_size}"
        )
    if tuple(sampler.shape) != tuple(train.shape):
        raise GnnoError(
            f"the sampler was built on data of shape {tuple(sampler.shape)}, "
            f"train has shape {train.shape}"
        )
    _check_sampler(sampler, shard_interactions(train, ctx.world_size, ctx.rank))


def wrap_model(
    model: torch.nn.Module, device: torch.device, ctx: Dist
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(module, ddp)``: the module on ``device`` and its DDP wrapper
    (``model`` itself when it is one already). On NCCL, sparse embedding
    tables get dense gradients (NCCL cannot all-reduce sparse tensors)."""
    ddp_type = torch.nn.parallel.DistributedDataParallel
    module = unwrap_parallel(model).to(device)
    if ctx.backend == "nccl" and sparse_parameters(module):
        if isinstance(model, ddp_type):
            raise GnnoError(
                "NCCL cannot all-reduce sparse gradients: build the model with dense "
                "embeddings (sparse=False) before wrapping it in DistributedDataParallel"
            )
        for m in module.modules():
            if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and m.sparse:
                m.sparse = False
        if ctx.is_main:
            warnings.warn(
                "NCCL cannot all-reduce sparse gradients: the embedding tables train with "
                "dense gradients and Adam on this run (sparse=False)",
                stacklevel=3,
            )
    if isinstance(model, ddp_type):
        return module, model
    ids = None
    if device.type == "cuda":
        ids = [device.index if device.index is not None else torch.cuda.current_device()]
    ddp = ddp_type(module, device_ids=ids)
    return module, ddp


# -- batches -----------------------------------------------------------------------


class ShardPlan:
    """Rank ``rank``'s batches: the plan over its users, cut into ``n_steps``
    steps (the same on every rank), with global user ids."""

    def __init__(
        self,
        train: Interactions,
        loss: str,
        batch_size: int,
        positives_per_group: int,
        seed: int,
        ctx: Dist,
    ) -> None:
        from gnno.samplers.sharded import rank_seed, shard_interactions

        world, rank = ctx.world_size, ctx.rank
        counts = train.user_counts.astype(np.int64)
        units = -(-counts // positives_per_group) if loss in ("group", "group_softmax") else counts
        per_rank = np.bincount(
            np.arange(train.n_users) % world, weights=units, minlength=world
        ).astype(np.int64)
        if per_rank.min() == 0:
            empty = int(np.argmin(per_rank))
            raise GnnoError(
                f"rank {empty} of {world} holds no training data (users u % {world} == {empty} "
                f"have no interactions): use fewer processes"
            )
        # One process's number of steps, at most the smallest shard's size
        # (no rank may have an empty step).
        self.n_steps = int(min(-(-int(per_rank.sum()) // batch_size), int(per_rank.min())))
        self.world, self.rank = world, rank
        local = shard_interactions(train, world, rank)
        seed = rank_seed(seed, world, rank)
        self.inner: PairPlan | GroupPlan = (
            GroupPlan(local, positives_per_group, batch_size, seed, steps=self.n_steps)
            if loss in ("group", "group_softmax")
            else PairPlan(local, batch_size, seed, steps=self.n_steps)
        )

    def batches(self, epoch: int) -> Iterator[Batch]:
        for users, positives, mask in self.inner.batches(epoch):
            yield users * self.world + self.rank, positives, mask


# -- collectives ---------------------------------------------------------------------


def all_sum(values: list[float], device: torch.device, ctx: Dist) -> list[float]:
    """``values`` summed over the ranks (float64; on ``device`` for NCCL)."""
    import torch.distributed as dist

    where = device if ctx.backend == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=where)
    dist.all_reduce(t)
    return t.cpu().tolist()


def from_main(value: Any, ctx: Dist, device: torch.device) -> Any:
    """Rank 0's ``value`` on every rank. An exception on rank 0 (passed as
    the value) is raised on every rank, so that no rank waits for a
    collective that will never come."""
    import torch.distributed as dist

    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0, device=device if ctx.backend == "nccl" else None)
    got = box[0]
    if isinstance(got, BaseException):
        if ctx.is_main:
            raise got
        raise GnnoError(f"rank 0 failed: {type(got).__name__}: {got}")
    return got


def barrier(ctx: Dist, device: torch.device) -> None:
    import torch.distributed as dist

    if ctx.backend == "nccl" and device.type == "cuda":
        dist.barrier(device_ids=[device.index or 0])
    else:
        dist.barrier()


# -- checkpoints ----------------------------------------------------------------------


def rank_state(trainer: Trainer, ctx: Dist) -> dict[str, Any]:
    """What rank ``r > 0`` saves: the sampler and RNG state that differ by rank."""
    return {
        "world_size": ctx.world_size,
        "rank": ctx.rank,
        "epoch": trainer.epoch,
        "sampler": trainer.sampler.state_dict(),
        "rng": trainer.rng_state(),
    }


def save_checkpoint(trainer: Trainer, path: Path, ctx: Dist) -> None:
    """Rank 0 writes ``path``; every other rank ``checkpoint.rank{r}.pt``
    beside it. Returns when all have written."""
    if ctx.is_main:
        checkpoint.save(path, trainer.state_dict())
    else:
        checkpoint.save(
            checkpoint.rank_path(path, ctx.rank),
            rank_state(trainer, ctx),
            format=checkpoint.RANK_FORMAT,
        )
    barrier(ctx, trainer.device)


def load_checkpoint(path: Path, ctx: Dist) -> dict[str, Any]:
    """The state this rank resumes from: ``path`` (rank 0's), with this
    rank's sampler and RNG state from its own file for ``r > 0``."""
    state = checkpoint.load(path)
    check_world_size(state, ctx.world_size, str(path))
    if ctx.is_main:
        return state
    own_path = checkpoint.rank_path(path, ctx.rank)
    if not own_path.is_file():
        raise GnnoError(f"cannot resume rank {ctx.rank}: {own_path} is missing")
    own = checkpoint.load(own_path, format=checkpoint.RANK_FORMAT)
    where = (own.get("world_size"), own.get("rank"))
    if where != (ctx.world_size, ctx.rank):
        raise GnnoError(
            f"{own_path} is for rank {where[1]} of {where[0]}, "
            f"this process is rank {ctx.rank} of {ctx.world_size}"
        )
    if own.get("epoch") != state.get("epoch"):
        raise GnnoError(
            f"{own_path} is at epoch {own.get('epoch')}, {path} at epoch {state.get('epoch')}: "
            "the checkpoint was not completed; start a fresh run"
        )
    return {**state, "sampler": own["sampler"], "rng": own["rng"]}


def check_world_size(state: Any, world: int, where: str = "the checkpoint") -> None:
    """Refuses a checkpoint written by a run with another number of processes
    (its samplers hold other shards)."""
    saved = state.get("world_size", 1) if hasattr(state, "get") else 1
    if saved != world:
        raise GnnoError(
            f"cannot resume: {where} was written by a run on {saved} process(es), "
            f"this run has {world}; resume with the same number of processes"
        )


# -- the command line -------------------------------------------------------------------


def init_from_env(device: str | None) -> tuple[Dist | None, torch.device | None]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment): initialises
    the default process group (NCCL on CUDA with ``cuda:LOCAL_RANK``, gloo on
    the CPU) and returns it with this rank's device; else ``(None, None)``."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise GnnoError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None
    if world <= 1:
        return None, None
    import torch.distributed as dist

    if not dist.is_available():
        raise GnnoError("WORLD_SIZE > 1 but this torch has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        use_cuda = torch.cuda.is_available()
    else:
        try:
            use_cuda = torch.device(device).type == "cuda"
        except RuntimeError:
            raise GnnoError(f"--device {device!r} is not a torch device") from None
        if torch.device(device).type not in ("cpu", "cuda"):
            raise GnnoError(f"--device {device}: distributed training runs on cpu or cuda")
    if use_cuda:
        if not torch.cuda.is_available():
            raise GnnoError(f"--device {device}: CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise GnnoError(
                f"LOCAL_RANK={local_rank} but this node has {torch.cuda.device_count()} GPU(s): "
                "start at most one process per GPU"
            )
        where = torch.device("cuda", local_rank)
        torch.cuda.set_device(where)
        backend = "nccl"
    else:
        where, backend = torch.device("cpu"), "gloo"
    global _OWNED
    if not dist.is_initialized():
        dist.init_process_group(backend)
        _OWNED = True
    ctx = context()
    return ctx, where


#: Whether ``init_from_env`` created the default process group (and so
#: ``shutdown`` may destroy it; a caller's own group is left alone).
_OWNED = False


def shutdown() -> None:
    """Destroys the default process group if ``init_from_env`` created it."""
    import torch.distributed as dist

    global _OWNED
    if _OWNED and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED = False


__all__ = [
    "Dist",
    "context",
    "world_size",
    "check_sampler",
    "wrap_model",
    "ShardPlan",
    "all_sum",
    "from_main",
    "barrier",
    "save_checkpoint",
    "load_checkpoint",
    "check_world_size",
    "init_from_env",
    "shutdown",
]
