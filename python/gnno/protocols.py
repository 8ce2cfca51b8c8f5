"""Evaluation protocols: a data set, its splits and the two evaluators.

``load(data, format)`` returns a ``Splits``: the training data the model fits
(``fit``: the data set's training part minus a validation item per user),
the validation and test sets, and ``validate(model)`` / ``test(model)``. The
protocol follows the data format:

* ``ncf`` (``data`` is the prefix of ``.train.rating[.gz]``,
  ``.test.rating``, ``.test.negative``): each test target ranked against its
  99 listed negatives (HR/NDCG @1, 3, 10); validation mirrors it with 99
  negatives drawn uniformly from the items the user never interacted with.
* ``lightgcn`` (a folder with ``train.txt`` and ``test.txt``): full ranking,
  recall/NDCG/precision @20.
* ``movielens`` / ``csv``: the latest interaction of each user is the test
  (``leave_one_out``), then full ranking (HR/NDCG @10, recall/NDCG/precision @20).
* ``None``: the built-in synthetic data set, full ranking @20, with the
  ground truth of its unobserved liked items.

Validation always comes out of the training data (one interaction per user,
``leave_one_out`` on train), never from the test set, so model selection
never sees the test.

``false_negative_fraction`` plants false negatives in real data
(``design/algorithms.md`` §7): that seeded share of each user's fitting
positives (at least one kept) is removed from ``fit`` and recorded in
``planted``; a drawn negative in ``planted`` is a known false negative.
Validation and test are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gnno._arrays import check_seed, finite_float
from gnno.exceptions import EmptyInputError, GnnoError
from gnno.interactions import Interactions

FORMATS = ("ncf", "lightgcn", "movielens", "csv")


@dataclass
class Splits:
    """A data set under its evaluation protocol.

    ``train``: the data set's training part (what the test excludes);
    ``fit``: what the model trains on (``train`` less ``valid``, less
    ``planted``); ``valid`` / ``test``: held-out items per user;
    ``planted``: the false negatives planted in ``fit`` (``None`` without);
    ``ground_truth``: every item a user is known to like that ``fit`` does
    not hold (validation, test, planted, and the synthetic data's unobserved
    liked items): a drawn negative in it is a false negative.
    ``validate(model)`` / ``test(model)`` return ``{metric: value}``;
    ``metric`` is the one model selection uses.
    """

    name: str
    format: str | None
    protocol: str
    train: Interactions
    fit: Interactions
    valid: Interactions
    test_set: Interactions
    planted: Interactions | None
    ground_truth: Interactions
    metric: str
    validate: Callable[[Any], dict[str, float]]
    test: Callable[[Any], dict[str, float]]

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items


def load(
    data: str | Path | None = None,
    format: str | None = None,  # noqa: A002 - the CLI's --format
    *,
    seed: int = 0,
    user_col: Any = "user",
    item_col: Any = "item",
    sep: str = ",",
    false_negative_fraction: float = 0.0,
    validation_users: int | None = None,
) -> Splits:
    """Loads ``data`` (``format`` as for ``gnno train``; ``None`` with no
    ``data``: the synthetic data set) and builds its splits and evaluators.

    ``seed`` fixes the validation split, the validation negatives and the
    planted false negatives (and the synthetic data). ``validation_users``:
    validate full-ranking protocols on a fixed random subset of that many
    users (all by default), which makes per-epoch validation cheaper on
    large data sets.
    """
    from gnno import datasets as ds
    from gnno.evaluation import evaluate_full, evaluate_sampled
    from gnno.samplers import UniformSampler

    seed = check_seed(seed)
    fraction = finite_float(false_negative_fraction, "false_negative_fraction", low=0.0)
    if fraction >= 1.0:
        raise GnnoError(f"false_negative_fraction must be below 1, got {fraction}")
    if format is not None and format not in FORMATS:
        raise GnnoError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if (data is None) != (format is None):
        raise GnnoError("data and format go together (both None: the synthetic data set)")
    if data is not None and format != "ncf" and not Path(data).exists():
        raise GnnoError(f"data {data}: no such file or directory")

    unobserved = None
    test_negatives = None
    if data is None:
        synth = ds.synthetic(seed=seed)
        train, test = synth.train, synth.test
        name = f"synthetic (seed {seed})"
        unobserved = synth.false_negatives()
    elif format == "ncf":
        ncf = ds.load_ncf(data)
        name = f"{Path(data).name} (NCF split)"
        train = ncf.train
        test = Interactions.from_pairs(
            ncf.test_users,
            ncf.test_items,
            max(train.n_users, int(np.max(ncf.test_users, initial=-1)) + 1),
            max(train.n_items, int(np.max(ncf.test_items, initial=-1)) + 1),
        )
        test_negatives = ncf.negatives
    elif format == "lightgcn":
        train, test = ds.load_lightgcn(data)
        name = f"{Path(data).name} (LightGCN split)"
    else:
        if format == "movielens":
            log = ds.load_movielens(data)
        else:
            log = ds.load_csv(data, user_col=user_col, item_col=item_col, sep=sep)
        train, test = ds.leave_one_out(log, seed=seed)
        name = f"{Path(data).name} (leave-one-out)"

    n_users = max(train.n_users, test.n_users)
    n_items = max(train.n_items, test.n_items)
    if test_negatives is not None:
        n_items = max(n_items, int(np.max(test_negatives, initial=-1)) + 1)
    train, test = resized(train, n_users, n_items), resized(test, n_users, n_items)
    train.require_nonempty("the training data")
    fit, valid = ds.leave_one_out(train, seed=seed)
    if valid.nnz == 0:
        raise EmptyInputError(
            f"{name}: no user has two or more training items, so no validation item can be "
            "held out of the training data (a user's only item stays in training)"
        )
    fit, valid = resized(fit, n_users, n_items), resized(valid, n_users, n_items)
    planted = None
    if fraction > 0:
        fit, planted = ds.ratio_split(fit, fraction, seed=seed + 2)
        name += f", {fraction:.0%} of positives planted as false negatives"
    known = [test, valid] + [x for x in (planted, unobserved) if x is not None]
    ground_truth = union(known, n_users, n_items)

    if format == "ncf":
        ks: tuple[int, ...] = (1, 3, 10)
        v_users, v_items = valid.to_pairs()
        v_users, v_items = _subset(v_users, v_items, validation_users, seed)
        # Validation mirrors the NCF test: 99 negatives drawn uniformly from
        # the items the user never interacted with (the full training row).
        draw = UniformSampler(train, seed=seed + 1)
        draw.set_epoch(0)
        v_negs = draw.sample(v_users, 99) if len(v_users) else np.zeros((0, 99), np.int64)

        def validate(model: Any) -> dict[str, float]:
            return evaluate_sampled(model, v_users, v_items, v_negs, ks=ks)

        def run_test(model: Any) -> dict[str, float]:
            return evaluate_sampled(model, ncf.test_users, ncf.test_items, ncf.negatives, ks=ks)

        protocol, metric = "sampled: 1 target + 99 negatives", "ndcg@10"
    else:
        ks = (20,) if format in (None, "lightgcn") else (10, 20)
        v_users, v_items = _subset(*valid.to_pairs(), validation_users, seed)
        v_target = Interactions.from_pairs(v_users, v_items, n_users, n_items)
        # Full ranking excludes what the model trained on; planted items stay
        # rankable (they are neither training nor held-out data).
        v_known = fit if planted is None else union([fit, planted], n_users, n_items)

        def validate(model: Any) -> dict[str, float]:
            return evaluate_full(model, v_known, v_target, ks=ks)

        def run_test(model: Any) -> dict[str, float]:
            return evaluate_full(model, train, test, ks=ks)

        protocol = "full ranking"
        metric = "recall@20" if ks == (20,) else "ndcg@10"
    return Splits(
        name=name,
        format=format,
        protocol=protocol,
        train=train,
        fit=fit,
        valid=valid,
        test_set=test,
        planted=planted,
        ground_truth=ground_truth,
        metric=metric,
        validate=validate,
        test=run_test,
    )


def resized(data: Interactions, n_users: int, n_items: int) -> Interactions:
    """``data`` with shape ``(n_users, n_items)`` (no larger than it is)."""
    if data.shape == (n_users, n_items):
        return data
    users, items = data.to_pairs()
    return Interactions.from_pairs(users, items, n_users, n_items)


def union(parts: list[Interactions], n_users: int, n_items: int) -> Interactions:
    """The pairs of every part that fall inside ``(n_users, n_items)``."""
    pairs = [p.to_pairs() for p in parts]
    users = np.concatenate([u for u, _ in pairs])
    items = np.concatenate([i for _, i in pairs])
    inside = (users < n_users) & (items < n_items)
    return Interactions.from_pairs(users[inside], items[inside], n_users, n_items)


def _subset(
    users: np.ndarray, items: np.ndarray, n: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(np.unique(users)):
        return users, items
    if n < 1:
        raise GnnoError(f"validation_users must be at least 1, got {n}")
    chosen = np.random.default_rng([seed, 7]).permutation(np.unique(users))[:n]
    keep = np.isin(users, chosen)
    return users[keep], items[keep]


__all__ = ["FORMATS", "Splits", "load", "resized", "union"]
