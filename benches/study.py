"""The sampler study: GMF trained with every gnno sampler on real data.

Trains GMF with the uniform, popularity, DNS, SRNS and gain samplers, with the
BPR and the group-wise hinge loss, under one budget (same epochs, batch size
and learning rate for every sampler), on

* ``ml1m``: MovieLens-1M, NCF split, sampled protocol (1 target + 99 listed
  negatives): HR@10, NDCG@10, N@1, N@3, R@3;
* ``gowalla``: Gowalla, LightGCN split, full ranking: Recall@20, NDCG@20;
* ``synthetic``: ``gnno.datasets.synthetic()``, where every false negative
  is known (full ranking @20).

Model selection uses a validation split held out from the training data (one
interaction per user, as ``gnno train`` does); the test set is evaluated once,
on the selected epoch's model. Every run's per-epoch history (validation
metrics, false-negative rate of the drawn negatives, timings and, for the gain
sampler, the distributions of ``H`` and ``G`` in its memory for true and false
negatives) is kept in ``<out>/study/runs.json``, from which
``<out>/RESULTS.md`` and the figures in ``<out>/figures/`` are generated.

Usage (from the repository root, with ``python/`` on ``PYTHONPATH``)::

    python benches/study.py                 # the full study (resumes: finished runs are kept)
    python benches/study.py --quick         # a smoke run (2 epochs, 1 seed, into a temp folder)
    python benches/study.py --only ml1m     # one data set (ml1m, gowalla or synthetic)
    python benches/study.py --report-only   # regenerate RESULTS.md and figures from runs.json
    python benches/study.py --fresh         # retrain everything

The data sets are looked up in ``../shared/datasets`` (or ``$GNNO_DATA``).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLER_NAMES = ("uniform", "popularity", "dns", "srns", "gain")
LOSS_NAMES = ("bpr", "group")
DATASETS = ("ml1m", "gowalla", "synthetic")

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

#: The starting point of the ablations: the prototype's best gain sampler.
ABLATION_BASE: dict[str, Any] = {
    "memory": 32,
    "fresh": 64,
    "alpha": 0.2,
    "retain": "top",
    "memory_candidates": 0,
    "fresh_candidates": 5,
    "criterion": "gain",
    "beta": 1.0,
    "temperature": 0.0,
}

#: The gain sampler of the main comparison: the best ablation variant (also
#: GainSampler's defaults).
GAIN_OPTIONS: dict[str, Any] = dict(ABLATION_BASE)

#: The peers, each with its usual published settings.
PEER_OPTIONS: dict[str, dict[str, Any]] = {
    "uniform": {},
    "popularity": {"beta": 0.75},
    "dns": {"candidates": 5},
    "srns": {"s1": 8, "s2": 64, "alpha": 5.0, "temperature": 10.0, "history": 5},
}

#: Training settings shared by every sampler of a data set, per loss.
TRAIN_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "ml1m": {
        "bpr": {"dim": 32, "lr": 1e-3, "weight_decay": 0.0, "batch_size": 1024, "epochs": 20},
        "group": {
            "dim": 32,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "batch_size": 256,
            "epochs": 20,
            "positives_per_group": 8,
            "negatives_per_user": 8,
            "margin": 1.0,
        },
    },
    "gowalla": {
        "bpr": {"dim": 64, "lr": 5e-3, "weight_decay": 0.0, "batch_size": 4096, "epochs": 8},
        "group": {
            "dim": 64,
            "lr": 5e-3,
            "weight_decay": 0.0,
            "batch_size": 1024,
            "epochs": 8,
            "positives_per_group": 8,
            "negatives_per_user": 8,
            "margin": 1.0,
        },
    },
    "synthetic": {
        "bpr": {"dim": 32, "lr": 3e-3, "weight_decay": 0.0, "batch_size": 1024, "epochs": 40},
        "group": {
            "dim": 32,
            "lr": 3e-3,
            "weight_decay": 0.0,
            "batch_size": 256,
            "epochs": 40,
            "positives_per_group": 8,
            "negatives_per_user": 8,
            "margin": 1.0,
        },
    },
}

#: The best training settings the ML-1M ablations found (dim 64, fresher
#: scores), given to DNS and the gain sampler alike.
TUNED_TRAIN: dict[str, Any] = dict(TRAIN_SETTINGS["ml1m"]["bpr"], dim=64, refresh_every=324)
TUNED_SAMPLERS = ("dns", "gain")

#: Seeds of the main comparison per data set (``--seeds`` overrides).
SEEDS = {"ml1m": 3, "gowalla": 2, "synthetic": 2}

#: Epochs of every ablation run (shorter than the main comparison's budget).
ABLATION_EPOCHS = 15

#: The ablations also run on synthetic data (every seed; its false negatives are known).
SYNTHETIC_ABLATIONS = (
    "base",
    "crit-hardness",
    "crit-additive",
    "beta-3",
    "beta-10",
    "beta-30",
    "alpha-0.8",
    "fresh-10",
    "mem-4-softmax",
)

#: Ablations on ML-1M: (name, what changes, gain options, training overrides, loss).
ABLATIONS: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = []


#: The settings above (and the result store, keyed by them) keep the option
#: names the recorded runs were made with; the samplers' current names are
#: these (see DEVELOPERS.md, "Sampler options").
_RENAMED: dict[str, dict[str, str]] = {
    "popularity": {"beta": "popularity_beta"},
    "dns": {"candidates": "fresh_candidates"},
    "srns": {
        "s1": "memory",
        "s2": "fresh",
        "alpha": "variance_weight",
        "temperature": "retain_temperature",
    },
    "gain": {"alpha": "gain_alpha", "beta": "gain_beta", "temperature": "draw_temperature"},
}


def _current_names(sampler: str, options: dict[str, Any]) -> dict[str, Any]:
    renamed = _RENAMED.get(sampler, {})
    return {renamed.get(key, key): value for key, value in options.items()}


def _ablation(name: str, note: str, loss: str = "bpr", train: Any = None, **gain: Any) -> None:
    ABLATIONS.append((name, note, gain, dict(train or {}), loss))


_ablation("base", "the prototype's gain sampler (BPR)")
_ablation("crit-hardness", "criterion=hardness (no gain)", criterion="hardness")
_ablation("crit-score", "criterion=score (= DNS over the same draws)", criterion="score")
_ablation("crit-additive", "criterion=gain_additive, beta=1", criterion="gain_additive")
_ablation("beta-3", "beta=3", beta=3.0)
_ablation("beta-10", "beta=10", beta=10.0)
_ablation("beta-30", "beta=30", beta=30.0)
_ablation("alpha-0.8", "alpha=0.8 (slower gain average)", alpha=0.8)
_ablation("fresh-10", "fresh_candidates=10", fresh_candidates=10)
_ablation(
    "mem-1", "memory_candidates=1 + fresh_candidates=4", memory_candidates=1, fresh_candidates=4
)
_ablation(
    "mem-4-softmax",
    "memory_candidates=4 + fresh_candidates=4, retain=softmax(H/0.1)",
    memory_candidates=4,
    fresh_candidates=4,
    retain="softmax",
    retain_temperature=0.1,
)
_ablation("temp-0.05", "temperature=0.05 (softmax draw)", temperature=0.05)
_ablation(
    "refresh-3x",
    "refresh every 324 steps (3 snapshots per epoch)",
    train={"refresh_every": 324},
)
_ablation("dim-64", "dim=64", train={"dim": 64})
_ablation("lr-3e-3", "lr=3e-3", train={"lr": 3e-3})
_ablation("wd-1e-6", "weight_decay=1e-6", train={"weight_decay": 1e-6})
_ablation("group", "loss=group (8 positives x 8 negatives, margin 1)", loss="group")
_ablation(
    "group-16x16-m0.5",
    "loss=group, 16 positives x 16 negatives per group, margin 0.5",
    loss="group",
    train={"positives_per_group": 16, "negatives_per_user": 16, "margin": 0.5},
)


@dataclass
class RunSpec:
    """One training run of the study."""

    group: str  # "main" or "ablation"
    dataset: str
    sampler: str
    loss: str
    seed: int
    options: dict[str, Any]
    train: dict[str, Any]
    variant: str = ""  # ablation name
    note: str = ""
    diagnostics: bool = False

    @property
    def key(self) -> str:
        return run_key(vars(self))


def run_key(run: dict[str, Any]) -> str:
    """A run's identity: what it is and a digest of its exact settings, so a
    changed setting trains a new run instead of reusing a stale one."""
    settings = json.dumps([run["options"], run["train"]], sort_keys=True)
    digest = hashlib.sha1(settings.encode()).hexdigest()[:8]
    name = run["variant"] or run["sampler"]
    return f"{run['group']}/{run['dataset']}/{name}/{run['loss']}/seed{run['seed']}/{digest}"


@dataclass
class StudyConfig:
    """What one invocation runs."""

    datasets: tuple[str, ...]
    seeds: dict[str, tuple[int, ...]]  # per data set
    quick: bool
    epochs_cap: int | None = None
    ablations: bool = True
    runs: list[RunSpec] = field(default_factory=list)


def plan(config: StudyConfig) -> list[RunSpec]:
    """The runs of the study, in the order they are trained."""
    runs: list[RunSpec] = []
    for dataset in config.datasets:
        for seed in config.seeds[dataset]:
            for loss in LOSS_NAMES:
                for sampler in SAMPLER_NAMES:
                    options = (
                        dict(GAIN_OPTIONS) if sampler == "gain" else dict(PEER_OPTIONS[sampler])
                    )
                    train = dict(TRAIN_SETTINGS[dataset][loss])
                    if sampler == "srns":
                        # SRNS ramps its variance term over a warm-up; scale it to the budget.
                        options["warmup"] = max(1, train["epochs"] // 3)
                    runs.append(
                        RunSpec(
                            "main",
                            dataset,
                            sampler,
                            loss,
                            seed,
                            options,
                            _capped(train, config.epochs_cap),
                            diagnostics=sampler == "gain",
                        )
                    )
    if config.ablations and "ml1m" in config.datasets:
        for sampler in TUNED_SAMPLERS:
            options = GAIN_OPTIONS if sampler == "gain" else PEER_OPTIONS[sampler]
            for seed in config.seeds["ml1m"]:
                runs.append(
                    RunSpec(
                        "tuned",
                        "ml1m",
                        sampler,
                        "bpr",
                        seed,
                        dict(options),
                        _capped(dict(TUNED_TRAIN), config.epochs_cap),
                        variant=f"{sampler}-tuned",
                        note=f"{sampler}, dim 64, 3 refreshes per epoch",
                    )
                )
    if config.ablations:
        for dataset in config.datasets:
            if dataset == "ml1m":
                seeds, epochs, names = config.seeds[dataset][:1], ABLATION_EPOCHS, None
            elif dataset == "synthetic":
                seeds, epochs, names = config.seeds[dataset], None, SYNTHETIC_ABLATIONS
            else:
                continue
            for name, note, gain, overrides, loss in ABLATIONS:
                if names is not None and name not in names:
                    continue
                train = dict(TRAIN_SETTINGS[dataset][loss])
                if epochs is not None:
                    train["epochs"] = epochs
                train.update(overrides)
                for seed in seeds:
                    runs.append(
                        RunSpec(
                            "ablation",
                            dataset,
                            "gain",
                            loss,
                            seed,
                            dict(ABLATION_BASE, **gain),
                            _capped(train, config.epochs_cap),
                            variant=name,
                            note=note,
                        )
                    )
    return runs


def _capped(train: dict[str, Any], cap: int | None) -> dict[str, Any]:
    if cap is not None:
        train = dict(train, epochs=min(train["epochs"], cap))
    return train


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@dataclass
class StudyData:
    """Training data, evaluators and the false-negative ground truth."""

    name: str
    fit: Any
    n_users: int
    n_items: int
    validate: Callable[[Any], dict[str, float]]
    test: Callable[[Any], dict[str, float]]
    metric: str
    ground_truth: Any  # held-out items: what a drawn negative should never be
    memory_truth: Any  # false negatives for the H/G figure


def data_root() -> Path:
    return Path(os.environ.get("GNNO_DATA", ROOT.parent / "shared" / "datasets"))


def load_data(dataset: str, seed: int, quick: bool) -> StudyData:
    """Loads ``dataset`` under the CLI's protocol (``gnno.protocols``:
    validation held out of the training data; ``ground_truth`` = validation
    + test items, plus the unobserved liked items on synthetic data).
    Gowalla validates on a fixed subset of users: the same held-out item per
    user, at a fraction of the cost of ranking 41k items for 30k users."""
    from gnno import protocols

    if dataset == "ml1m":
        data, fmt = data_root() / "ml-1m-ncf" / "ml-1m", "ncf"
    elif dataset == "gowalla":
        data, fmt = data_root() / "gowalla", "lightgcn"
    else:
        data, fmt = None, None
    subset = (2000 if quick else 6000) if dataset == "gowalla" else None
    splits = protocols.load(data, fmt, seed=seed, validation_users=subset)
    if dataset == "synthetic":
        from gnno.datasets import synthetic

        memory_truth = synthetic(seed=seed).false_negatives()
    else:
        memory_truth = splits.ground_truth
    return StudyData(
        name=splits.name,
        fit=splits.fit,
        n_users=splits.n_users,
        n_items=splits.n_items,
        validate=splits.validate,
        test=splits.test,
        metric=splits.metric,
        ground_truth=splits.ground_truth,
        memory_truth=memory_truth,
    )


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

_HIST_BINS = 100


def memory_snapshot(sampler: Any, truth: Any) -> dict[str, Any]:
    """``H`` and ``G`` of the gain sampler's memory, split into false
    negatives (items in ``truth``) and true negatives: counts, means,
    quantiles and 100-bin histograms over [0, 1]. ``G`` only for slots
    with at least two observations (the others have no gain yet)."""
    diag = sampler.diagnostics()
    items = diag["items"]
    users = np.broadcast_to(np.arange(items.shape[0])[:, None], items.shape)
    filled = items >= 0
    u, j = users[filled], items[filled].astype(np.int64)
    inside = (u < truth.n_users) & (j < truth.n_items)
    is_fn = np.zeros(len(u), dtype=bool)
    is_fn[inside] = truth.contains(u[inside], j[inside])
    h = diag["h"][filled]
    g = diag["g"][filled]
    has_g = diag["observations"][filled] >= 2
    out: dict[str, Any] = {}
    for label, mask in (("false", is_fn), ("true", ~is_fn)):
        out[label] = {
            "count": int(mask.sum()),
            "h": _summary(h[mask]),
            "g": _summary(g[mask & has_g]),
        }
    return out


def _summary(values: np.ndarray) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"n": 0}
    counts, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=_HIST_BINS, range=(0.0, 1.0))
    q = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 0.9])
    return {
        "n": int(len(values)),
        "mean": float(values.mean()),
        "quantiles": [float(x) for x in q],
        "hist": counts.tolist(),
    }


def train_run(spec: RunSpec, data: StudyData, device: str) -> dict[str, Any]:
    """Trains one run and returns its record (settings, history, test metrics)."""
    import torch

    from gnno.models import GMF
    from gnno.samplers import build_sampler
    from gnno.training import Trainer

    train = dict(spec.train)
    dim = train.pop("dim")
    epochs = train.pop("epochs")
    torch.manual_seed(spec.seed)
    model = GMF(data.n_users, data.n_items, dim)
    sampler = build_sampler(
        spec.sampler, data.fit, seed=spec.seed, **_current_names(spec.sampler, spec.options)
    )

    def observe(trainer: Any, record: dict[str, Any]) -> None:
        if spec.diagnostics and hasattr(trainer.sampler, "diagnostics"):
            record["memory"] = memory_snapshot(trainer.sampler, data.memory_truth)

    started = time.perf_counter()
    trainer = Trainer(
        model,
        data.fit,
        sampler,
        loss=spec.loss,
        epochs=epochs,
        device=device,
        seed=spec.seed,
        evaluator=data.validate,
        metric=data.metric,
        progress=False,
        ground_truth=data.ground_truth,
        on_epoch_end=observe,
        **train,
    )
    result = trainer.fit()
    test = data.test(model)
    wall = time.perf_counter() - started
    return {
        "key": spec.key,
        "group": spec.group,
        "dataset": spec.dataset,
        "data_name": data.name,
        "sampler": spec.sampler,
        "variant": spec.variant,
        "note": spec.note,
        "loss": spec.loss,
        "seed": spec.seed,
        "options": spec.options,
        "train": spec.train,
        "metric": data.metric,
        "best_epoch": result.best_epoch,
        "validation": result.best_metrics,
        "test": test,
        "history": result.history,
        "wall_seconds": wall,
        "finished": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "device": str(trainer.device),
    }


def run_study(config: StudyConfig, out: Path, fresh: bool, device: str) -> dict[str, Any]:
    """Trains every planned run not yet in ``runs.json`` (all planned runs
    with ``fresh``), saving after each one."""
    path = out / "study" / "runs.json"
    store = load_store(path)
    planned = set() if fresh else {r.key for r in config.runs}
    # Runs of the kinds this invocation plans go when the plan no longer has
    # them (changed settings) or when retraining (``fresh``); others stay.
    store["runs"] = {
        k: r for k, r in store["runs"].items() if k in planned or not _covered(r, config)
    }
    store["meta"] = machine_info()
    store["meta"]["quick"] = config.quick
    store["meta"]["seeds"] = {d: list(s) for d, s in config.seeds.items()}
    cache: dict[tuple[str, int], StudyData] = {}
    todo = [r for r in config.runs if r.key not in store["runs"]]
    print(f"{len(config.runs)} runs planned, {len(todo)} to train", flush=True)
    for n, spec in enumerate(todo, 1):
        key = (spec.dataset, spec.seed)
        if key not in cache:
            cache.clear()  # one data set in memory at a time
            cache[key] = load_data(spec.dataset, spec.seed, config.quick)
        record = train_run(spec, cache[key], device)
        store["runs"][spec.key] = record
        save_store(path, store)
        main = record["metric"]
        print(
            f"[{n}/{len(todo)}] {spec.key}: best epoch {record['best_epoch']} "
            f"val {main} {record['validation'].get(main, float('nan')):.4f} "
            f"test {_headline(record)} ({record['wall_seconds']:.0f}s)",
            flush=True,
        )
    return store


def _covered(run: dict[str, Any], config: StudyConfig) -> bool:
    """Whether ``config`` plans the kind of run ``run`` is (same data set, seed, group)."""
    return (
        run["dataset"] in config.datasets
        and run["seed"] in config.seeds[run["dataset"]]
        and (run["group"] == "main" or config.ablations)
    )


def _headline(record: dict[str, Any]) -> str:
    test = record["test"]
    keys = ("hr@10", "ndcg@10") if "hr@10" in test else ("recall@20", "ndcg@20")
    return " ".join(f"{k} {test[k]:.4f}" for k in keys)


def load_store(path: Path) -> dict[str, Any]:
    """``runs.json``: ``{"meta": machine and date, "runs": {key: record}}``."""
    if not path.is_file():
        return {"runs": {}, "meta": {}}
    store = json.loads(path.read_text())
    store["runs"] = {run_key(r): dict(r, key=run_key(r)) for r in store["runs"].values()}
    return store


def save_store(path: Path, store: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(store, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def machine_info() -> dict[str, Any]:
    import torch

    import gnno

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gnno": getattr(gnno, "__version__", "?"),
        "commit": commit,
        "threads": "1 torch thread, 1 gnno thread",
        "load": f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?",
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

#: Test metrics shown per data set (label, key).
REPORTED: dict[str, list[tuple[str, str]]] = {
    "ml1m": [
        ("HR@10", "hr@10"),
        ("NDCG@10", "ndcg@10"),
        ("N@1", "ndcg@1"),
        ("N@3", "ndcg@3"),
        ("R@3", "recall@3"),
    ],
    "gowalla": [("Recall@20", "recall@20"), ("NDCG@20", "ndcg@20")],
    "synthetic": [("Recall@20", "recall@20"), ("NDCG@20", "ndcg@20")],
}
TITLES = {
    "ml1m": "MovieLens-1M, NCF split (1 target + 99 listed negatives)",
    "gowalla": "Gowalla, LightGCN split (full ranking)",
    "synthetic": "Synthetic data (`gnno.datasets.synthetic()`, full ranking)",
}


def _runs(store: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [r for r in store["runs"].values() if all(r.get(k) == v for k, v in match.items())]


def _stat(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, half range (max − min)/2, count."""
    v = np.asarray(list(values), dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float((v.max() - v.min()) / 2), len(v)


def _fmt(mean: float, spread: float, n: int, digits: int = 4) -> str:
    if n == 0 or not np.isfinite(mean):
        return "–"
    if n == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def _fn_rate(run: dict[str, Any]) -> float:
    rates = [h["false_negative_rate"] for h in run["history"] if "false_negative_rate" in h]
    return float(np.mean(rates)) if rates else float("nan")


def _epoch_seconds(run: dict[str, Any], part: str = "total") -> float:
    return float(np.mean([h["seconds"][part] for h in run["history"]]))


def main_table(store: dict[str, Any], dataset: str) -> list[str]:
    """Markdown table: test metrics (mean ± half range over seeds) per sampler and loss."""
    cols = REPORTED[dataset]
    head = [
        "loss",
        "sampler",
        *[c for c, _ in cols],
        "false-neg. rate",
        "best epoch",
        "s/epoch (sampling)",
        "wall s/run",
        "seeds",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for loss in LOSS_NAMES:
        best = {
            key: max(
                (
                    _stat(
                        r["test"][key]
                        for r in _runs(store, group="main", dataset=dataset, sampler=s, loss=loss)
                    )[0]
                    for s in SAMPLER_NAMES
                ),
                default=float("nan"),
            )
            for _, key in cols
        }
        for sampler in SAMPLER_NAMES:
            runs = _runs(store, group="main", dataset=dataset, sampler=sampler, loss=loss)
            if not runs:
                continue
            cells = [loss, sampler]
            for _, key in cols:
                m, s, n = _stat(r["test"][key] for r in runs)
                text = _fmt(m, s, n)
                cells.append(f"**{text}**" if np.isclose(m, best[key]) else text)
            fm, fs, fn = _stat(_fn_rate(r) for r in runs)
            cells.append(_fmt(fm, fs, fn, 5))
            cells.append(", ".join(str(r["best_epoch"] + 1) for r in runs))
            cells.append(
                f"{np.mean([_epoch_seconds(r) for r in runs]):.1f} "
                f"({np.mean([_epoch_seconds(r, 'sampling') for r in runs]):.1f})"
            )
            cells.append(f"{np.mean([r['wall_seconds'] for r in runs]):.0f}")
            cells.append(str(len(runs)))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def settings_lines(store: dict[str, Any], dataset: str) -> list[str]:
    lines = []
    for loss in LOSS_NAMES:
        runs = _runs(store, group="main", dataset=dataset, loss=loss)
        if not runs:
            continue
        t = runs[0]["train"]
        text = ", ".join(f"{k}={v}" for k, v in t.items())
        lines.append(f"* {loss}: GMF, Adam, {text}; every sampler the same.")
    opts: dict[str, Any] = {}
    for r in _runs(store, group="main", dataset=dataset):
        opts.setdefault(r["sampler"], r["options"])
    for sampler in SAMPLER_NAMES:
        if sampler in opts:
            o = ", ".join(f"{k}={v}" for k, v in opts[sampler].items()) or "no options"
            lines.append(f"* `{sampler}`: {o}")
    return lines


def target_lines(store: dict[str, Any]) -> list[str]:
    """The issue's targets, each checked against the measured means."""

    def mean(
        dataset: str, sampler: str, key: str, loss: str, group: str = "main"
    ) -> tuple[float, float, int]:
        runs = _runs(store, group=group, dataset=dataset, sampler=sampler, loss=loss)
        if key == "fn":
            return _stat(_fn_rate(r) for r in runs)
        return _stat(r["test"][key] for r in runs)

    rows = ["| target | measured (gain, mean ± half range) | met? |", "|---|---|---|"]

    def row(
        label: str,
        value: tuple[float, float, int],
        goal: float,
        higher: bool = True,
        digits: int = 4,
        spread: float | None = None,
    ) -> None:
        """``spread``: the compared peer's half range; a difference within
        the two half ranges is flagged as within the seed spread."""
        m, s, n = value
        if n == 0:
            rows.append(f"| {label} | not run | – |")
            return
        ok = m >= goal if higher else m <= goal
        verdict = "met" if ok else f"missed by {abs(goal - m):.{digits}f}"
        if spread is not None and abs(m - goal) <= s + spread:
            verdict += " (within the seed spread)"
        rows.append(
            f"| {label} | {_fmt(m, s, n, digits)} ({n} seed{'s' if n > 1 else ''}) | {verdict} |"
        )

    tuned_label = "bpr, dim 64, 3 refreshes/epoch"
    settings = [(loss, loss, "main") for loss in LOSS_NAMES] + [("bpr", tuned_label, "tuned")]
    for loss, label, group in settings:
        if not _runs(store, group=group, dataset="ml1m", sampler="gain", loss=loss):
            continue
        gain = {k: mean("ml1m", "gain", k, loss, group) for k in ("hr@10", "ndcg@10")}
        row(f"ML-1M HR@10 ≥ 0.73 ({label})", gain["hr@10"], 0.73)
        row(f"ML-1M NDCG@10 ≥ 0.45 ({label})", gain["ndcg@10"], 0.45)
        for peer in ("dns", "srns"):
            for key in ("hr@10", "ndcg@10"):
                p = mean("ml1m", peer, key, loss, group)
                if p[2]:
                    row(
                        f"ML-1M {key.upper()} gain > {peer} ({label}; {peer}: {_fmt(*p)})",
                        gain[key],
                        p[0],
                        spread=p[1],
                    )
    for loss in LOSS_NAMES:
        if not _runs(store, group="main", dataset="gowalla", sampler="gain", loss=loss):
            continue
        recall = mean("gowalla", "gain", "recall@20", loss)
        row(f"Gowalla Recall@20 ≥ 0.183 ({loss})", recall, 0.183)
        dr = mean("gowalla", "dns", "recall@20", loss)
        if dr[2]:
            row(
                f"Gowalla Recall@20 gain > DNS ({loss}; DNS: {_fmt(*dr)})",
                recall,
                dr[0],
                spread=dr[1],
            )
        d = mean("gowalla", "dns", "fn", loss)
        if d[2]:
            row(
                f"Gowalla false-negative rate well below DNS's ({loss}; DNS: "
                f"{_fmt(*d, 6)}; goal: ≤ 0.8 × DNS)",
                mean("gowalla", "gain", "fn", loss),
                0.8 * d[0],
                higher=False,
                digits=6,
            )
    return rows


#: Per data set: (label, test key) of the ablation table's two metrics and the validation key.
ABLATION_METRICS = {
    "ml1m": (("HR@10", "hr@10"), ("NDCG@10", "ndcg@10"), "ndcg@10"),
    "synthetic": (("Recall@20", "recall@20"), ("NDCG@20", "ndcg@20"), "recall@20"),
}


def ablation_rows(
    store: dict[str, Any], dataset: str, group: str = "ablation"
) -> list[dict[str, Any]]:
    """One row per variant of ``group``: its runs and mean metrics over seeds."""
    (_, k1), (_, k2), kv = ABLATION_METRICS[dataset]
    order = {name: i for i, (name, *_rest) in enumerate(ABLATIONS)}
    notes = {name: note for name, note, *_rest in ABLATIONS}
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in _runs(store, group=group, dataset=dataset):
        by_variant.setdefault(r["variant"], []).append(r)
    rows = []
    for name in sorted(by_variant, key=lambda n: order.get(n, 999)):
        runs = by_variant[name]
        rows.append(
            {
                "variant": name,
                "note": notes.get(name, runs[0]["note"]),
                "loss": runs[0]["loss"],
                "runs": runs,
                "m1": _stat(r["test"][k1] for r in runs),
                "m2": _stat(r["test"][k2] for r in runs),
                "val": _stat(r["validation"].get(kv, float("nan")) for r in runs),
                "fn": _stat(_fn_rate(r) for r in runs),
                "epochs": ", ".join(str(r["best_epoch"] + 1) for r in runs),
                "seconds": float(np.mean([_epoch_seconds(r) for r in runs])),
            }
        )
    return rows


def ablation_table(store: dict[str, Any], dataset: str, group: str = "ablation") -> list[str]:
    """Markdown table of the ablations on ``dataset`` (best second metric in bold)."""
    (l1, _), (l2, _), kv = ABLATION_METRICS[dataset]
    rows = ablation_rows(store, dataset, group)
    head = [
        "variant",
        "change from the base",
        "loss",
        f"test {l1}",
        f"test {l2}",
        f"val {kv}",
        "best epoch",
        "false-neg. rate",
        "s/epoch",
        "seeds",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = max((row["m2"][0] for row in rows), default=float("nan"))
    for row in rows:
        m2 = _fmt(*row["m2"])
        if np.isclose(row["m2"][0], best):
            m2 = f"**{m2}**"
        lines.append(
            f"| {row['variant']} | {row['note']} | {row['loss']} | {_fmt(*row['m1'])} | {m2} | "
            f"{_fmt(*row['val'])} | {row['epochs']} | {_fmt(*row['fn'], 5)} | "
            f"{row['seconds']:.1f} | {len(row['runs'])} |"
        )
    return lines


def memory_lines(store: dict[str, Any]) -> list[str]:
    """Counts of false/true negatives in the gain sampler's memory (last epoch)."""
    lines = [
        "| data | loss | seed | memory slots | false negatives in memory | "
        "mean H (false / true) | mean G (false / true) |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        for r in _runs(store, group="main", dataset=dataset, sampler="gain"):
            mem = [h["memory"] for h in r["history"] if "memory" in h]
            if not mem:
                continue
            last = mem[-1]
            total = last["false"]["count"] + last["true"]["count"]

            def pair(q: str, last: dict[str, Any] = last) -> str:
                f, t = last["false"][q], last["true"][q]
                return f"{f.get('mean', float('nan')):.3f} / {t.get('mean', float('nan')):.3f}"

            lines.append(
                f"| {dataset} | {r['loss']} | {r['seed']} | {total} | {last['false']['count']} "
                f"({last['false']['count'] / max(1, total):.2%}) | {pair('h')} | {pair('g')} |"
            )
    return lines


def write_report(store: dict[str, Any], out: Path, figures: list[Path]) -> Path:
    """Writes ``out/RESULTS.md`` from the stored runs."""
    meta = store.get("meta", {})
    runs = list(store["runs"].values())
    seeds = {
        d: sorted({r["seed"] for r in _runs(store, group="main", dataset=d)}) for d in DATASETS
    }
    seed_text = "; ".join(
        f"{d}: {len(s)} ({', '.join(map(str, s))})" for d, s in seeds.items() if s
    )
    total = sum(r["wall_seconds"] for r in runs)
    lines = [
        "# gnno sampler study",
        "",
        "Generated by `benches/study.py` from `docs/study/runs.json`; nothing here is edited "
        "by hand. Regenerate the report and figures with `PYTHONPATH=python python "
        "benches/study.py --report-only`; retrain everything with `PYTHONPATH=python python "
        "benches/study.py --fresh` (one data set: `--only ml1m|gowalla|synthetic`).",
        "",
        f"* Date: {meta.get('date', '?')}; machine: {meta.get('machine', '?')}; "
        f"{meta.get('threads', '')}; Python {meta.get('python', '?')}, torch "
        f"{meta.get('torch', '?')}, commit {meta.get('commit', '?')}; load average "
        f"{meta.get('load', '?')} when the last invocation started (timings are noisy "
        "when the machine is shared).",
        f"* {len(runs)} runs, {total / 60:.0f} minutes of training and evaluation in all; "
        f"seeds of the main comparison: {seed_text}; "
        "shown as mean ± half the range (max − min)/2 over seeds.",
        "* Model selection: the epoch with the best validation metric (NDCG@10 on ML-1M, "
        "Recall@20 elsewhere) on one interaction per user held out of the training data "
        "(`gnno train`'s split); the test set is evaluated once, on that epoch's model. "
        "On Gowalla the validation ranks a fixed random subset of users (6,000) to keep it cheap.",
        "* False-negative rate: the share of drawn negatives that are the user's held-out "
        "items (validation + test; on synthetic data also every liked but unobserved item), "
        "averaged over epochs.",
        "* Wall time: training + per-epoch validation + the test, per run; "
        "`s/epoch (sampling)` is one epoch and the part of it spent drawing negatives.",
        "",
    ]
    target = target_lines(store)
    if len(target) > 2:
        lines += ["## Targets", "", *target, ""]
    summary = summary_lines(store)
    if summary:
        lines += ["## What the numbers say", "", *summary, ""]
    for dataset in DATASETS:
        if not _runs(store, group="main", dataset=dataset):
            continue
        data_name = _runs(store, group="main", dataset=dataset)[0]["data_name"]
        lines += [
            f"## {TITLES[dataset]}",
            "",
            f"Data: {data_name}. Settings:",
            "",
            *settings_lines(store, dataset),
            "",
            *main_table(store, dataset),
            "",
        ]
        lines += _findings(store, dataset)
    if ablation_rows(store, "ml1m", "tuned"):
        t = ", ".join(f"{k}={v}" for k, v in TUNED_TRAIN.items())
        lines += [
            "## ML-1M with the best training settings of the ablations",
            "",
            f"DNS and the gain sampler (sampler settings as above) with {t}; the targets "
            "table checks these runs as well.",
            "",
            *ablation_table(store, "ml1m", "tuned"),
            "",
        ]
    for dataset in ("ml1m", "synthetic"):
        rows = ablation_rows(store, dataset)
        if not rows:
            continue
        base = next((row["runs"][0] for row in rows if row["variant"] == "base"), None)
        seeds = sorted({r["seed"] for row in rows for r in row["runs"]})
        settings = (
            f" (base: {', '.join(f'{k}={v}' for k, v in base['options'].items())}; "
            f"{', '.join(f'{k}={v}' for k, v in base['train'].items())})"
            if base
            else ""
        )
        lines += [
            f"## Ablations of the gain sampler: {TITLES[dataset]}",
            "",
            f"Seeds {', '.join(map(str, seeds))}; each variant changes one setting of the "
            f"base{settings}. Best test {ABLATION_METRICS[dataset][1][0]} in bold.",
            "",
            *ablation_table(store, dataset),
            "",
            *_ablation_findings(rows, ABLATION_METRICS[dataset][1][0]),
            "",
        ]
    mem = memory_lines(store)
    if len(mem) > 2:
        lines += [
            "## H and G in the gain sampler's memory",
            "",
            "At the last epoch of each gain run: how many memory slots hold a false negative "
            "(synthetic: a liked item outside train; ML-1M / Gowalla: a validation or test "
            "item), and the mean `H` and `G` of false vs true negatives (`G` over slots with "
            "two or more observations).",
            "",
            *mem,
            "",
        ]
    if figures:
        lines += ["## Figures", ""]
        for fig in figures:
            rel = os.path.relpath(fig, out)
            lines += [f"![{fig.stem}]({rel})", ""]
    lines += ["## Every run", "", *run_lines(store), ""]
    path = out / "RESULTS.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def summary_lines(store: dict[str, Any]) -> list[str]:
    """Generated findings: gain vs DNS against the seed spread, the separation
    of ``G`` between true and false negatives, and what the ablations changed."""
    out = []
    for dataset in DATASETS:
        key = REPORTED[dataset][1][1]
        label = REPORTED[dataset][1][0]
        for loss in LOSS_NAMES:
            g = _stat(
                r["test"][key]
                for r in _runs(store, group="main", dataset=dataset, sampler="gain", loss=loss)
            )
            d = _stat(
                r["test"][key]
                for r in _runs(store, group="main", dataset=dataset, sampler="dns", loss=loss)
            )
            if not (g[2] and d[2]):
                continue
            diff = g[0] - d[0]
            noise = g[1] + d[1]
            verdict = "within" if abs(diff) <= noise else "outside"
            out.append(
                f"* {dataset}, {loss}: gain − DNS = {diff:+.4f} test {label} "
                f"({verdict} the seed spread, ±{noise:.4f})."
            )
    for dataset in DATASETS:
        gaps = []
        for r in _runs(store, group="main", dataset=dataset, sampler="gain"):
            mem = [h["memory"] for h in r["history"] if "memory" in h]
            if mem and mem[-1]["false"]["g"].get("n") and mem[-1]["true"]["g"].get("n"):
                last = mem[-1]
                gaps.append(
                    (
                        last["true"]["g"]["mean"] - last["false"]["g"]["mean"],
                        last["false"]["h"]["mean"] - last["true"]["h"]["mean"],
                    )
                )
        if gaps:
            dg = float(np.mean([a for a, _ in gaps]))
            dh = float(np.mean([b for _, b in gaps]))
            out.append(
                f"* {dataset}: in the memory at the last epoch, true negatives have a mean `G` "
                f"{dg:+.4f} above false negatives, while false negatives have a mean `H` "
                f"{dh:+.4f} above true negatives. With `beta = 1` the gain criterion's factor "
                f"`1 + beta·(G − g0)` differs by about {abs(dg):.1%} between the two: "
                + (
                    "`G` points the right way (higher for true negatives) but is weak next to `H`."
                    if dg > 0
                    else "`G` does not separate them."
                )
            )
    for dataset in ("ml1m", "synthetic"):
        rows = {row["variant"]: row for row in ablation_rows(store, dataset)}
        base = rows.get("base")
        if base is None:
            continue
        label = ABLATION_METRICS[dataset][1][0]
        parts = []
        for name in (
            "beta-3",
            "beta-10",
            "beta-30",
            "crit-hardness",
            "crit-additive",
            "mem-1",
            "mem-4-softmax",
        ):
            if name in rows:
                row = rows[name]
                parts.append(
                    f"{name}: {label} {row['m2'][0] - base['m2'][0]:+.4f}, false-negative rate "
                    f"{row['fn'][0] / base['fn'][0] - 1:+.0%}"
                )
        if parts:
            out.append(f"* {dataset} ablations against the base: " + "; ".join(parts) + ".")
    return out


def run_lines(store: dict[str, Any]) -> list[str]:
    """One row per run: its key, test headline, best epoch and wall time."""
    lines = [
        "| run | test | best epoch | epochs | wall s | device |",
        "|---|---|---|---|---|---|",
    ]
    for key in sorted(store["runs"]):
        r = store["runs"][key]
        lines.append(
            f"| {key} | {_headline(r)} | {r['best_epoch'] + 1} | {len(r['history'])} | "
            f"{r['wall_seconds']:.0f} | {r['device']} |"
        )
    return lines


def _findings(store: dict[str, Any], dataset: str) -> list[str]:
    """Generated sentences: which sampler won per loss, and by how much."""
    key = REPORTED[dataset][1][1]  # NDCG@k
    label = REPORTED[dataset][1][0]
    out = []
    for loss in LOSS_NAMES:
        means = {}
        for s in SAMPLER_NAMES:
            runs = _runs(store, group="main", dataset=dataset, sampler=s, loss=loss)
            if runs:
                means[s] = _stat(r["test"][key] for r in runs)[0]
        if not means:
            continue
        ranked = sorted(means, key=lambda s: -means[s])
        text = ", ".join(f"{s} {means[s]:.4f}" for s in ranked)
        out.append(f"* {loss}: test {label} ranks {text}.")
        if "srns" in means and "uniform" in means and means["srns"] < means["uniform"]:
            out.append(
                "  SRNS trails uniform sampling: each draw picks among the user's s1 = 8 "
                "memory items (topped up with s2 fresh candidates and retained at every "
                "step) by hardness plus the score variance, all scored from the snapshot "
                "of the last refresh; at this budget the variance term has few snapshots "
                "to work with (the published warm-up alone is 50 epochs)."
            )
        if "gain" in means:
            others = [s for s in ranked if s != "gain"]
            if others:
                best_other = others[0]
                diff = means["gain"] - means[best_other]
                word = "ahead of" if diff > 0 else "behind"
                out.append(
                    f"  The gain sampler is {abs(diff):.4f} {word} the best peer ({best_other})."
                )
    return [*out, ""] if out else []


def _ablation_findings(rows: list[dict[str, Any]], label: str) -> list[str]:
    """Generated sentences: which variants beat the base, which lost most."""
    base = next((row for row in rows if row["variant"] == "base"), None)
    if base is None:
        return []
    b = base["m2"][0]
    others = [row for row in rows if row is not base]
    better = sorted((row for row in others if row["m2"][0] > b), key=lambda row: -row["m2"][0])
    worse = sorted(others, key=lambda row: row["m2"][0])[:3]
    lines = [f"Base: test {label} {b:.4f}, false-negative rate {base['fn'][0]:.5f}."]
    if better:
        lines.append(
            "Above the base: "
            + "; ".join(f"{row['variant']} ({row['m2'][0] - b:+.4f})" for row in better)
            + "."
        )
    else:
        lines.append(f"No variant beat the base on test {label}.")
    lines.append(
        "Largest drops: "
        + "; ".join(f"{row['variant']} ({row['m2'][0] - b:+.4f})" for row in worse)
        + "."
    )
    return lines


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

COLORS = {
    "uniform": "tab:gray",
    "popularity": "tab:brown",
    "dns": "tab:blue",
    "srns": "tab:green",
    "gain": "tab:red",
}


def _per_epoch(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> np.ndarray:
    """(epochs,) mean over runs of ``get(history record)``."""
    n = min(len(r["history"]) for r in runs)
    return np.array([[get(r["history"][e]) for e in range(n)] for r in runs]).mean(axis=0)


def curve_figure(store: dict[str, Any], dataset: str, out: Path, what: str) -> Path | None:
    """Validation metric (``what="metric"``) or false-negative rate (``"fn"``)
    per epoch, one line per sampler, one panel per loss (mean over seeds)."""
    import matplotlib.pyplot as plt

    runs_all = _runs(store, group="main", dataset=dataset)
    if not runs_all:
        return None
    metric = runs_all[0]["metric"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=what == "fn")
    for ax, loss in zip(axes, LOSS_NAMES, strict=True):
        for sampler in SAMPLER_NAMES:
            runs = _runs(store, group="main", dataset=dataset, sampler=sampler, loss=loss)
            if not runs:
                continue
            if what == "metric":
                y = _per_epoch(runs, lambda h: h["metrics"][metric])
            else:
                y = _per_epoch(runs, lambda h: h.get("false_negative_rate", np.nan))
            # DNS dashed on top of the gain sampler: the two often overlap.
            ax.plot(
                np.arange(1, len(y) + 1),
                y,
                label=sampler,
                color=COLORS[sampler],
                lw=3.0 if sampler == "gain" else 1.6,
                ls="--" if sampler == "dns" else "-",
                alpha=0.75 if sampler == "gain" else 1.0,
                zorder=3 if sampler == "dns" else 2,
            )
        ax.set_title(f"{loss} loss")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if what == "fn":
            ax.set_yscale("log")
    axes[0].set_ylabel(f"validation {metric}" if what == "metric" else "false-negative rate")
    axes[0].legend()
    kind = "validation" if what == "metric" else "false-negative rate"
    fig.suptitle(f"{TITLES[dataset].split(' (')[0]}: {kind} per epoch (mean over seeds)")
    fig.tight_layout()
    path = out / "figures" / f"{dataset}_{'validation' if what == 'metric' else 'fn_rate'}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory_figure(store: dict[str, Any], dataset: str, out: Path) -> Path | None:
    """GDNS's key figure: ``H`` and ``G`` of false vs true negatives in the
    gain sampler's memory over training (median and 25–75 % band), and their
    histograms at the last epoch (seed 0, the loss with more false negatives
    in memory)."""
    import matplotlib.pyplot as plt

    runs = [
        r
        for r in _runs(store, group="main", dataset=dataset, sampler="gain")
        if any("memory" in h for h in r["history"])
    ]
    if not runs:
        return None
    runs.sort(
        key=lambda r: (
            r["seed"],
            -r["history"][-1].get("memory", {}).get("false", {}).get("count", 0),
        )
    )
    run = runs[0]
    mem = [h.get("memory") for h in run["history"]]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for col, q in enumerate(("h", "g")):
        ax = axes[0, col]
        for label, color in (("true", "tab:blue"), ("false", "tab:red")):
            xs, med, lo, hi = [], [], [], []
            for e, m in enumerate(mem, 1):
                s = m[label][q] if m else {"n": 0}
                if s.get("n", 0) == 0:
                    continue
                xs.append(e)
                lo.append(s["quantiles"][1])
                med.append(s["quantiles"][2])
                hi.append(s["quantiles"][3])
            if xs:
                name = "false negatives" if label == "false" else "true negatives"
                ax.plot(xs, med, color=color, label=name, marker=".")
                ax.fill_between(xs, lo, hi, color=color, alpha=0.2)
        ax.set_title(f"{q.upper()} in memory over training (median, 25–75 %)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
        ax = axes[1, col]
        last = mem[-1] or {}
        spans = []
        for label, color in (("true", "tab:blue"), ("false", "tab:red")):
            s = last.get(label, {}).get(q, {"n": 0})
            if s.get("n", 0) == 0:
                continue
            hist = np.asarray(s["hist"], float)
            edges = np.linspace(0.0, 1.0, len(hist) + 1)
            name = f"{'false' if label == 'false' else 'true'} negatives (n={s['n']})"
            ax.stairs(hist / s["n"], edges, color=color, fill=True, alpha=0.35, label=name)
            spans.append((s["quantiles"][0], s["quantiles"][-1]))
        if spans:
            lo_x = max(0.0, min(a for a, _ in spans) - 0.05)
            hi_x = min(1.0, max(b for _, b in spans) + 0.05)
            ax.set_xlim(lo_x, hi_x)
        ax.set_title(f"{q.upper()} at the last epoch (share of slots per bin)")
        ax.set_xlabel(q.upper())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"{TITLES[dataset].split(' (')[0]}: gain sampler memory, {run['loss']} loss, "
        f"seed {run['seed']}"
    )
    fig.tight_layout()
    path = out / "figures" / f"{dataset}_memory_h_g.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ablation_figure(store: dict[str, Any], dataset: str, out: Path) -> Path | None:
    """Bar chart of the ablations' test metric (mean over seeds)."""
    import matplotlib.pyplot as plt

    rows = ablation_rows(store, dataset)
    if not rows:
        return None
    names = [row["variant"] for row in rows]
    values = [row["m2"][0] for row in rows]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    colors = ["tab:red" if n == "base" else "tab:gray" for n in names]
    ax.barh(names[::-1], values[::-1], color=colors[::-1])
    ax.set_xlim(min(values) - 0.02, max(values) + 0.01)
    ax.set_xlabel(f"test {ABLATION_METRICS[dataset][1][0]} ({TITLES[dataset].split(',')[0]})")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = out / "figures" / f"{dataset}_ablations.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_figures(store: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths: list[Path | None] = []
    for dataset in DATASETS:
        paths.append(curve_figure(store, dataset, out, "metric"))
        paths.append(curve_figure(store, dataset, out, "fn"))
        paths.append(memory_figure(store, dataset, out))
        if dataset in ABLATION_METRICS:
            paths.append(ablation_figure(store, dataset, out))
    return [p for p in paths if p is not None]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 1 seed, no ablations")
    p.add_argument("--only", choices=DATASETS, action="append", help="data set(s) to run")
    p.add_argument("--out", help="output folder (default: docs; --quick: a temp folder)")
    p.add_argument(
        "--seeds",
        type=int,
        help="seeds of the main comparison for every data set "
        f"(default: {', '.join(f'{d} {n}' for d, n in SEEDS.items())})",
    )
    p.add_argument(
        "--no-ablations", action="store_true", help="skip the ablations (ML-1M, synthetic)"
    )
    p.add_argument("--report-only", action="store_true", help="only regenerate report and figures")
    p.add_argument("--fresh", action="store_true", help="retrain runs already in runs.json")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.gettempdir()) / "gnno-study-quick"
    else:
        out = ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        import torch

        import gnno

        torch.set_num_threads(1)
        gnno.set_num_threads(1)
        datasets = tuple(args.only or DATASETS)
        config = StudyConfig(
            datasets=datasets,
            seeds={
                d: tuple(range(1 if args.quick else (args.seeds or SEEDS[d]))) for d in DATASETS
            },
            quick=args.quick,
            epochs_cap=2 if args.quick else None,
            ablations=not args.no_ablations and not args.quick,
        )
        config.runs = plan(config)
        started = time.perf_counter()
        run_study(config, out, args.fresh, args.device)
        print(f"trained in {time.perf_counter() - started:.0f}s", flush=True)
    store = load_store(out / "study" / "runs.json")
    if not store["runs"]:
        print(f"no runs in {out / 'study' / 'runs.json'}", file=sys.stderr)
        return 1
    figures = make_figures(store, out)
    report = write_report(store, out, figures)
    print(f"wrote {report} and {len(figures)} figures", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
