"""Trains one run through ``gnno.Trainer`` and returns its record.

The record holds the run's identity and settings, the per-epoch history
(validation metrics, the drawn false-negative rate, timings and, for the
gain sampler, its memory's ``H`` and ``G`` split into false and true
negatives), the validation metrics of the best epoch, the test metrics of
that epoch's model, and the compute it used.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import time
from typing import Any

import numpy as np

from _machine import cpu_model, git_commit

from .data import StudyData, known_false_negatives
from .plan import RunSpec

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)

#: The popularity of the kept model's top-``POPULARITY_K`` recommendations
#: is measured on at most ``POPULARITY_USERS`` users with a test item.
POPULARITY_K = 20
POPULARITY_USERS = 2000


def train_run(spec: RunSpec, data: StudyData, device: str = "cpu") -> dict[str, Any]:
    """Trains ``spec`` on ``data`` to the recipe's epoch cap or early stop."""
    code_commit()  # the code this process runs, named in its records
    import torch

    from gnno.protocols import union
    from gnno.recipes import build_model, trainer_options
    from gnno.samplers import build_sampler
    from gnno.training import Trainer

    splits = data.splits
    t = dict(spec.train)
    torch.manual_seed(spec.seed)
    model = build_model(t, splits.n_users, splits.n_items)
    # An oracle's sampler excludes the known false negatives as if they were
    # training positives; the model still trains on ``fit`` alone.
    excluded = splits.fit
    if spec.exclude_known:
        known = known_false_negatives(splits)
        excluded = union([splits.fit, known], splits.n_users, splits.n_items)
    sampler = build_sampler(spec.sampler, excluded, seed=spec.seed, **spec.options)

    def observe(trainer: Any, record: dict[str, Any]) -> None:
        if spec.diagnostics and hasattr(trainer.sampler, "diagnostics"):
            record["memory"] = memory_snapshot(trainer.sampler.diagnostics(), data.false_negatives)

    started = time.perf_counter()
    cpu_started = time.process_time()
    trainer = Trainer(
        model,
        splits.fit,
        sampler,
        loss=spec.loss,
        device=device,
        seed=spec.seed,
        evaluator=splits.validate,
        metric=splits.metric,
        **trainer_options(t),
        progress=False,
        ground_truth=data.ground_truth,
        on_epoch_end=observe,
    )
    result = trainer.fit()
    test = splits.test(model)
    popularity = recommended_popularity(model, splits, k=POPULARITY_K, seed=spec.seed)
    recovery = hidden_recovery(model, splits)
    return {
        **spec.to_dict(),
        "data_name": splits.name,
        "metric": splits.metric,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "validation": result.best_metrics,
        "test": test,
        "history": result.history,
        "popularity": popularity,
        "recovery": recovery,
        "compute": compute_info(device, time.perf_counter() - started, cpu_started),
    }


def hidden_recovery(model: Any, splits: Any) -> dict[str, float] | None:
    """How well the kept model ranks the known false negatives that are not
    held out (``data.known_false_negatives``: the planted positives, the
    synthetic data's unobserved liked items): full ranking of every item
    outside the user's training, validation and test items, recall and NDCG
    at ``POPULARITY_K``. The test metric counts these items as negatives (or
    never ranks them); this counts them as what they are, liked items, so a
    sampler that keeps them out of its draws can show here what it learned.
    ``None`` without such items."""
    from gnno.evaluation import evaluate_full
    from gnno.protocols import union

    known = known_false_negatives(splits)
    if known.nnz == 0:
        return None
    seen = union([splits.fit, splits.valid, splits.test_set], splits.n_users, splits.n_items)
    return evaluate_full(model, seen, known, ks=(POPULARITY_K,))


def recommended_popularity(
    model: Any, splits: Any, k: int = POPULARITY_K, users: int = POPULARITY_USERS, seed: int = 0
) -> dict[str, Any] | None:
    """How popular the kept model's recommendations are. For a seeded
    sample of at most ``users`` users with a test item: the mean
    ``log(1 + popularity)`` of the ``k`` items the model ranks first among
    those outside the user's training data, less the mean over the user's
    own training items. Popularity counts every interaction (training and
    test), as ``docs/VALIDATION_CHECK.md`` does for the held-out items, so
    the two compare: a model whose ``delta`` is below the test items' shift
    recommends less popular items than the test holds. ``None`` for a model
    without dot-product vectors."""
    from gnno.scoring import model_vectors

    vectors = model_vectors(model)
    if vectors is None:
        return None
    user_vec, item_vec = vectors
    train, test = splits.train, splits.test_set
    n_items = train.n_items
    counts = np.bincount(np.concatenate([train.indices, test.indices]), minlength=n_items).astype(
        np.float64
    )
    log_pop = np.log1p(counts)
    indptr, indices = np.asarray(train.indptr, np.int64), train.indices
    candidates = np.unique(test.to_pairs()[0])
    candidates = candidates[indptr[candidates + 1] > indptr[candidates]]
    rng = np.random.default_rng(seed)
    if len(candidates) > users:
        candidates = np.sort(rng.choice(candidates, users, replace=False))
    top_mean, own_mean = [], []
    for chunk in np.array_split(candidates, max(1, len(candidates) // 256)):
        scores = user_vec[chunk] @ item_vec.T
        for row, u in enumerate(chunk):
            seen = indices[indptr[u] : indptr[u + 1]]
            scores[row, seen] = -np.inf
            own_mean.append(log_pop[seen].mean())
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_mean.extend(log_pop[top].mean(axis=1))
    if not top_mean:
        return None
    delta = np.asarray(top_mean) - np.asarray(own_mean)
    return {
        "k": k,
        "users": len(delta),
        "top_log_popularity": float(np.mean(top_mean)),
        "delta": float(delta.mean()),
        "delta_se": float(delta.std(ddof=1) / np.sqrt(len(delta))) if len(delta) > 1 else 0.0,
    }


def memory_snapshot(diag: dict[str, np.ndarray], truth: Any) -> dict[str, Any]:
    """``H`` and ``G`` of the sampler's memory split into false negatives
    (items in ``truth``) and true ones: counts, means and quantiles, and how
    well each separates them: ``auc_h`` = P(a false negative's ``H`` > a
    true one's), ``auc_g`` = P(a false negative's ``G`` < a true one's)
    (0.5: no separation; above: the direction GDNS relies on). ``G`` counts
    only slots observed at least twice (the others have no gain yet)."""
    items = diag["items"]
    users = np.broadcast_to(np.arange(items.shape[0])[:, None], items.shape)
    filled = items >= 0
    u, j = users[filled].astype(np.int64), items[filled].astype(np.int64)
    inside = (u < truth.n_users) & (j < truth.n_items)
    is_fn = np.zeros(len(u), dtype=bool)
    if inside.any():
        is_fn[inside] = truth.contains(u[inside], j[inside])
    h = diag["h"][filled].astype(np.float64)
    g = diag["g"][filled].astype(np.float64)
    has_g = diag["observations"][filled] >= 2
    out: dict[str, Any] = {}
    for label, mask in (("false", is_fn), ("true", ~is_fn)):
        out[label] = {
            "count": int(mask.sum()),
            "h": summary(h[mask]),
            "g": summary(g[mask & has_g]),
        }
    out["auc_h"] = auc(h[is_fn], h[~is_fn])
    out["auc_g"] = auc(-g[is_fn & has_g], -g[~is_fn & has_g])
    return out


def summary(values: np.ndarray) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"n": 0}
    return {
        "n": int(len(values)),
        "mean": float(values.mean()),
        "quantiles": [float(x) for x in np.quantile(values, QUANTILES)],
    }


def auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """P(a value of ``positive`` > one of ``negative``), ties counting half
    (the Mann–Whitney statistic); ``None`` when either side is empty."""
    positive = positive[np.isfinite(positive)]
    negative = negative[np.isfinite(negative)]
    if len(positive) == 0 or len(negative) == 0:
        return None
    both = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct value.
    ends = np.cumsum(counts)
    mid = ends - (counts - 1) / 2.0
    ranks = mid[inverse]
    n_pos, n_neg = len(positive), len(negative)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@functools.cache
def code_commit() -> str:
    """The commit of the code this process runs: HEAD when first asked.
    ``train_run`` asks as its first run starts (the study's and the recipe
    search's), so a commit made while the process trains (it keeps the code
    it loaded) does not name its runs."""
    return git_commit(mark_changes=False)


def compute_info(device: str, wall: float, cpu_started: float) -> dict[str, Any]:
    """The machine and the compute of one run."""
    import torch

    import gnno

    return {
        "wall_seconds": wall,
        "cpu_seconds": time.process_time() - cpu_started,
        "device": device,
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gnno_threads": gnno.get_num_threads() if hasattr(gnno, "get_num_threads") else None,
        # Gain and SRNS draws compare kernel values that agree across SIMD
        # paths only to float tolerance: a run reproduces on the same path.
        "simd": gnno.kernels.simd_path(),
        "load": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gnno": getattr(gnno, "__version__", "?"),
        "commit": code_commit(),
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


__all__ = [
    "train_run",
    "recommended_popularity",
    "hidden_recovery",
    "memory_snapshot",
    "summary",
    "auc",
    "code_commit",
    "compute_info",
]
