"""The split-shift measurement of ``benches/validation_check.py``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gnno import Interactions, datasets, protocols
from gnno.evaluation import evaluate_full

ROOT = Path(__file__).resolve().parents[1]


def _splits(held_out: str, seed: int = 0) -> SimpleNamespace:
    """Users with 20 items each drawn by a Zipf popularity; the test split
    holds out 4 per user: a random 4, 4 drawn with odds ∝ popularity² (a
    skew to popular items) or the 4 with the largest ids; validation holds
    out one random training item per user."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 400, 1000
    weights = 1.0 / np.arange(1, n_items + 1)
    weights = weights[rng.permutation(n_items)]
    weights /= weights.sum()
    users, items, is_test = [], [], []
    for u in range(n_users):
        row = rng.choice(n_items, size=20, replace=False, p=weights)
        if held_out == "random":
            key = rng.random(row.size)
        elif held_out == "popular":
            # Weighted sampling without replacement (Efraimidis–Spirakis keys).
            key = rng.random(row.size) ** (1.0 / weights[row] ** 2)
        else:
            key = row.astype(float)
        test = np.zeros(row.size, dtype=bool)
        test[np.argsort(-key)[:4]] = True
        users += [u] * row.size
        items += list(row)
        is_test += list(test)
    users, items, is_test = np.array(users), np.array(items), np.array(is_test)
    test = Interactions.from_pairs(users[is_test], items[is_test], n_users, n_items)
    train = Interactions.from_pairs(users[~is_test], items[~is_test], n_users, n_items)
    fit, valid = datasets.leave_one_out(train, seed=seed)
    fit = protocols.resized(fit, n_users, n_items)
    valid = protocols.resized(valid, n_users, n_items)
    return SimpleNamespace(
        fit=fit,
        valid=valid,
        train=train,
        test_set=test,
        protocol="full ranking",
        metric="recall@20",
        validate=lambda model: evaluate_full(model, fit, valid),
        test=lambda model: evaluate_full(model, train, test),
    )


@pytest.fixture
def measure(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    import validation_check

    return validation_check.measure_shift


def _within(x: dict, sigmas: float = 4.0) -> bool:
    return abs(x["mean"]) <= sigmas * x["se"] + 1e-9


def test_a_random_split_shows_no_shift(measure) -> None:
    shift = measure(_splits("random"))
    for name in ("valid", "test"):
        assert _within(shift["log_popularity"][name])
        position = shift["id_position"][name]
        assert abs(position["mean"] - 0.5) <= 4 * position["se"]


def test_a_test_split_of_popular_items_is_caught(measure) -> None:
    shift = measure(_splits("popular"))
    pop = shift["log_popularity"]
    assert _within(pop["valid"])
    assert pop["test"]["mean"] > 10 * pop["test"]["se"] > 0
    mp = shift["most_popular"]
    assert mp["metric"] == "recall@20"
    assert mp["test_one_item"] > 1.3 * mp["valid"]


def test_a_test_split_of_late_items_is_caught(measure) -> None:
    shift = measure(_splits("late"))
    # The held-out items have the user's largest ids: every training item lies below.
    assert shift["id_position"]["test"]["mean"] == pytest.approx(1.0)
    assert abs(shift["id_position"]["valid"]["mean"] - 0.5) < 0.1


def test_the_report_states_the_shift(measure, tmp_path) -> None:
    import validation_check

    out = tmp_path / "report.md"
    shift = {"skewed": measure(_splits("popular")), "random": measure(_splits("random"))}
    validation_check.write_report([], out, shift)
    text = out.read_text()
    assert "## Are the held-out items drawn like the training items?" in text
    assert "Does validation reward drawing the test items?" not in text
    assert "* skewed: validation items are as popular as the same user's training items" in text
    assert "test items are more popular than the same user's training items" in text
    assert "* random: validation items are as popular" in text
    assert "test items are as popular" in text
