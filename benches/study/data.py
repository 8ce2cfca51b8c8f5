"""The study's data sets, loaded through ``gnno.protocols.load`` (the
splits and evaluators ``gnno train`` uses)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import datasets_path

from .registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StudyData:
    """A loaded data set: ``splits`` (``gnno.protocols.Splits``), the truth
    the Trainer counts drawn false negatives against (``ground_truth``), and
    the false negatives the H/G diagnostics separate (``false_negatives``):
    the planted ones where the data set has them, else every known one."""

    name: str
    splits: Any
    ground_truth: Any
    false_negatives: Any


def load(dataset: str, seed: int, scratch: Path | None = None) -> StudyData:
    """Loads ``dataset`` (a ``registry.DATASETS`` name) for ``seed``.
    ``scratch``: where the tiny data set's CSV is written."""
    from gnno import protocols

    spec = DATASETS[dataset]
    if dataset == "tiny":
        path = write_tiny(scratch or Path("."), seed)
    elif spec.path is None:
        path = None
    else:
        path = datasets_path() / spec.path
    kwargs: dict[str, Any] = {}
    if spec.format == "csv":
        kwargs = {"user_col": "user", "item_col": "item"}
    splits = protocols.load(
        path,
        spec.format,
        seed=seed,
        validation_users=spec.validation_users,
        false_negative_fraction=spec.false_negative_fraction,
        **kwargs,
    )
    truth = splits.planted if splits.planted is not None else splits.ground_truth
    return StudyData(spec.name, splits, truth, truth)


def known_false_negatives(splits: Any) -> Any:
    """The data set's known false negatives that are neither validation nor
    test items (the planted ones; the synthetic data's unobserved liked
    items), as ``Interactions``: what an oracle sampler leaves out."""
    from gnno import Interactions

    users, items = splits.ground_truth.to_pairs()
    keep = ~(splits.valid.contains(users, items) | splits.test_set.contains(users, items))
    return Interactions.from_pairs(users[keep], items[keep], splits.n_users, splits.n_items)


def write_tiny(folder: Path, seed: int) -> Path:
    """A small synthetic data set (300 users, 200 items) as ``user,item``
    CSV, for ``--quick``."""
    import numpy as np

    from gnno.datasets import synthetic

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tiny-{seed}.csv"
    if not path.is_file():
        data = synthetic(n_users=300, n_items=200, mean_activity=20, seed=seed)
        users, items = data.train.to_pairs()
        t_users, t_items = data.test.to_pairs()
        rows = np.stack([np.concatenate([users, t_users]), np.concatenate([items, t_items])], 1)
        tmp = path.with_suffix(".tmp")
        np.savetxt(tmp, rows, fmt="%d", delimiter=",", header="user,item", comments="")
        os.replace(tmp, path)
    return path


__all__ = ["StudyData", "load", "known_false_negatives", "write_tiny"]
