"""End-to-end epochs of GMF training with the library's Trainer: each sampler
against uniform sampling, in the same run.

An epoch is everything ``Trainer.fit`` does for one epoch (batches,
``set_epoch`` and refreshes, draws, forward, backward, Adam), with the
sampler's work overlapped with training (``prefetch=2``) unless the name
says ``serial``. The sampler's epoch and a uniform epoch alternate round by
round; each model keeps training from round to round, as in a real run.

Measured (``--benchmark-enable``): whole epochs of ML-1M (994,169 pairs)
and Gowalla (810,128 pairs), batch 1024, d=32, on ``cuda`` if available;
and ML-1M with every training step also waiting ``DEVICE_WAIT_S`` with the
CPU idle, as a host waits for its GPU, which is what the overlap can use.
As plain tests (benchmarks disabled, as in CI): one short epoch on the
first few hundred users of each, a smoke test.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import torch

import gnno
from _compare import compare_interleaved

pytestmark = pytest.mark.benchmark(group="epoch")

DIM = 32
BATCH = 1024
# (sampler, prefetch): every sampler overlapped, and the gain sampler in
# the loop too, for what the overlap is worth.
CASES = [
    ("popularity", 2),
    ("dns", 2),
    ("srns", 2),
    ("gain", 2),
    ("gain", 0),
]
# The idle time per step of the simulated device-bound run.
DEVICE_WAIT_S = 0.002
# Users kept for the single-run smoke test.
SMOKE_USERS = {"ml-1m": 100, "gowalla": 300}


def first_users(train: gnno.Interactions, n: int) -> gnno.Interactions:
    """The rows of the first ``n`` users (all items kept)."""
    n = min(n, train.n_users)
    indptr = np.asarray(train.indptr[: n + 1])
    return gnno.Interactions.from_csr(indptr, train.indices[: indptr[-1]], n, train.n_items)


class DeviceBoundGMF(gnno.GMF):
    """A GMF whose training steps also wait ``DEVICE_WAIT_S`` with the CPU
    idle, as a host does while its GPU computes: what the overlap can use."""

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            time.sleep(DEVICE_WAIT_S)
        return super().forward(users, items)


def make_trainer(
    train: gnno.Interactions, name: str, prefetch: int, model_cls: type = gnno.GMF
) -> gnno.Trainer:
    torch.manual_seed(0)
    model = model_cls(train.n_users, train.n_items, DIM)
    sampler = gnno.build_sampler(name, train, seed=0)
    return gnno.Trainer(
        model,
        train,
        sampler,
        batch_size=BATCH,
        lr=1e-3,
        weight_decay=1e-6,
        epochs=0,
        seed=0,
        progress=False,
        prefetch=prefetch,
    )


def one_more_epoch(trainer: gnno.Trainer) -> None:
    trainer.epochs += 1
    trainer.fit()


def seconds(trainer: gnno.Trainer, key: str, skip: int) -> float:
    values = [h["seconds"][key] for h in trainer.history[skip:]] or [float("nan")]
    return statistics.median(values)


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    """One intra-op thread for torch: GMF's small ops gain nothing from more,
    and where another process holds a core, OpenMP's barriers wait for the
    descheduled thread at every op (steps several times slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("GNNO_BENCH_TORCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


def measuring(config: pytest.Config) -> bool:
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not session.disabled


@pytest.fixture(scope="module", params=["ml-1m", "gowalla"])
def dataset(request):
    train = request.getfixturevalue("ml1m" if request.param == "ml-1m" else "gowalla")
    if not measuring(request.config):
        train = first_users(train, SMOKE_USERS[request.param])
    return request.param, train


def against_uniform(
    benchmark, data_name, train, name, prefetch, model_cls=gnno.GMF, setting=""
) -> dict:
    trainer = make_trainer(train, name, prefetch, model_cls)
    uniform = make_trainer(train, "uniform", prefetch, model_cls)
    warm = 0 if getattr(benchmark, "disabled", False) else 1
    mode = "overlapped" if prefetch else "serial"
    record = compare_interleaved(
        benchmark,
        f"epoch {data_name}{setting}: {name} vs uniform ({mode})",
        lambda: one_more_epoch(trainer),
        lambda: one_more_epoch(uniform),
        items=float(train.nnz),
        unit="pairs",
        rounds=5,
        warmup_rounds=warm,
        extra=lambda: {
            "dataset": data_name,
            "setting": setting.strip(", ") or "plain",
            "sampler": name,
            "prefetch": prefetch,
            "users": train.n_users,
            "items_in_catalogue": train.n_items,
            "device": str(trainer.device),
            "torch_threads": torch.get_num_threads(),
            "gnno_threads": gnno.get_num_threads(),
            # Per epoch (medians): the sampler's own time, overlapped or
            # not, and what training waited for it.
            "sampler_busy_s": seconds(trainer, "sampler_busy", warm),
            "sampler_wait_s": seconds(trainer, "sampling", warm),
            "uniform_busy_s": seconds(uniform, "sampler_busy", warm),
            "uniform_wait_s": seconds(uniform, "sampling", warm),
        },
    )
    # Both trained on every pair, the loss finite.
    for t in (trainer, uniform):
        assert t.history and all(np.isfinite(h["loss"]) for h in t.history)
    assert record["rust_median_s"] > 0 and record["reference_median_s"] > 0
    return record


@pytest.mark.parametrize(("name", "prefetch"), CASES, ids=[f"{n}-p{p}" for n, p in CASES])
def test_epoch_against_uniform(benchmark, dataset, name, prefetch):
    against_uniform(benchmark, *dataset, name, prefetch)


@pytest.mark.parametrize("prefetch", [2, 0], ids=["p2", "p0"])
def test_epoch_with_an_idle_host(benchmark, request, ml1m, prefetch):
    """The gain sampler against uniform when every training step also leaves
    the CPU idle for ``DEVICE_WAIT_S``, as GPU training does on a host with
    free cores: the overlap's best case, on this machine."""
    train = ml1m if measuring(request.config) else first_users(ml1m, SMOKE_USERS["ml-1m"])
    setting = f", idle host {DEVICE_WAIT_S * 1e3:g} ms/step"
    against_uniform(benchmark, "ml-1m", train, "gain", prefetch, DeviceBoundGMF, setting)
