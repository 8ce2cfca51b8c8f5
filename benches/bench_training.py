"""One GMF training epoch on the default (sparse) path against a plain
dense ``nn.Embedding`` + ``torch.optim.Adam`` loop, in the same run.

Both train GMF at d=64 on the same batches (``batch_size`` shuffled pairs)
with the same uniform negatives and loss; what differs is the update:

* ``gnno`` (the default path of ``gnno train``): ``GMF(sparse=True)`` in
  ``gnno.Trainer``, so RowAdam touches only the batch's embedding rows,
  regularised by the L2 penalty on those rows;
* ``dense`` (the reference a torch user writes first): dense embeddings and
  Adam with weight decay, which reads and writes every row of both tables at
  every step.

Measured (``--benchmark-enable``): whole epochs of ML-1M and Gowalla,
rounds interleaved. As plain tests (benchmarks disabled, as in CI): one
epoch on the first few hundred users, a smoke test.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import gnno
from _compare import compare_interleaved
from bench_epoch import SMOKE_USERS, first_users, measuring

pytestmark = pytest.mark.benchmark(group="training")

DIM = 64
BATCH = 1024
NEGATIVES = 1


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("GNNO_BENCH_TORCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=["ml-1m", "gowalla"])
def dataset(request):
    train = request.getfixturevalue("ml1m" if request.param == "ml-1m" else "gowalla")
    if not measuring(request.config):
        train = first_users(train, SMOKE_USERS[request.param])
    return request.param, train


class DenseLoop:
    """The plain loop: dense embeddings, Adam with weight decay on every row."""

    def __init__(self, train: gnno.Interactions) -> None:
        torch.manual_seed(0)
        self.model = gnno.GMF(train.n_users, train.n_items, DIM)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, weight_decay=1e-6)
        self.sampler = gnno.UniformSampler(train, seed=0)
        self.users, self.items = (torch.from_numpy(a) for a in train.to_pairs())
        self.epoch = 0

    def run_epoch(self) -> None:
        self.sampler.set_epoch(self.epoch)
        g = torch.Generator().manual_seed(self.epoch)
        for batch in torch.randperm(len(self.users), generator=g).split(BATCH):
            u, i = self.users[batch], self.items[batch]
            j = self.sampler.sample_for_pairs(u, i, NEGATIVES)
            scores = self.model(u, torch.cat([i[:, None], j], 1))
            loss = gnno.bpr_loss(scores[:, 0], scores[:, 1:])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        self.epoch += 1


def sparse_trainer(train: gnno.Interactions) -> gnno.Trainer:
    torch.manual_seed(0)
    return gnno.Trainer(
        gnno.GMF(train.n_users, train.n_items, DIM, sparse=True),
        train,
        gnno.UniformSampler(train, seed=0),
        loss="bpr",
        l2=1e-4,
        negatives_per_pair=NEGATIVES,
        batch_size=BATCH,
        epochs=0,
        progress=False,
        prefetch=0,
        device="cpu",
    )


def test_sparse_epoch_against_dense_adam(benchmark, dataset):
    name, train = dataset
    trainer = sparse_trainer(train)
    dense = DenseLoop(train)

    def sparse_epoch() -> None:
        trainer.epochs += 1
        trainer.fit()

    record = compare_interleaved(
        benchmark,
        f"training epoch {name}, d={DIM}: sparse vs dense Adam",
        sparse_epoch,
        dense.run_epoch,
        items=float(train.nnz),
        unit="pairs",
        rounds=3,
        warmup_rounds=0 if getattr(benchmark, "disabled", False) else 1,
        extra=lambda: {
            "dataset": name,
            "dim": DIM,
            "batch_size": BATCH,
            "users": train.n_users,
            "items_in_catalogue": train.n_items,
            "torch_threads": torch.get_num_threads(),
        },
    )
    assert all(np.isfinite(h["loss"]) for h in trainer.history)
    assert record["rust_median_s"] > 0 and record["reference_median_s"] > 0
