"""``gnno.protocols``: splits and evaluators shared by the CLI and the study."""

from __future__ import annotations

import numpy as np
import pytest

from gnno import protocols
from gnno.exceptions import EmptyInputError, GnnoError


@pytest.fixture
def small(monkeypatch):
    from gnno import datasets

    real = datasets.synthetic
    monkeypatch.setattr(
        datasets,
        "synthetic",
        lambda seed=0: real(n_users=150, n_items=90, mean_activity=15, seed=seed),
    )


def _pairs(x):
    return set(zip(*x.to_pairs(), strict=True))


def test_splits_are_disjoint_and_validation_comes_from_train(small):
    s = protocols.load(seed=3)
    fit, valid, test, train = (_pairs(x) for x in (s.fit, s.valid, s.test_set, s.train))
    assert fit | valid == train and not fit & valid
    assert not train & test
    assert s.planted is None
    # The ground truth holds validation and test, never a fitting pair.
    truth = _pairs(s.ground_truth)
    assert valid <= truth and test <= truth and not truth & fit
    assert s.metric == "recall@20"


def test_planted_false_negatives_leave_validation_and_test_alone(small):
    plain = protocols.load(seed=3)
    s = protocols.load(seed=3, false_negative_fraction=0.3)
    planted = _pairs(s.planted)
    assert _pairs(s.fit) | planted == _pairs(plain.fit)
    assert not _pairs(s.fit) & planted
    assert _pairs(s.valid) == _pairs(plain.valid) and _pairs(s.test_set) == _pairs(plain.test_set)
    assert planted <= _pairs(s.ground_truth)
    counts, kept = plain.fit.user_counts, s.fit.user_counts
    # A seeded 30% of each user's positives, at least one kept.
    assert np.all(kept[counts > 0] >= 1)
    share = 1 - kept.sum() / counts.sum()
    assert 0.25 < share < 0.35
    again = protocols.load(seed=3, false_negative_fraction=0.3)
    assert _pairs(again.planted) == planted


def test_validation_subset_is_fixed_by_the_seed(small):
    import torch

    from gnno import GMF

    torch.manual_seed(0)
    model = GMF(150, 90, dim=4)
    a = protocols.load(seed=1, validation_users=40)
    b = protocols.load(seed=1, validation_users=40)
    assert a.validate(model) == b.validate(model)
    assert a.validate(model) != protocols.load(seed=1).validate(model)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"format": "ncf"}, "go together"),
        ({"data": "x"}, "go together"),
        ({"data": "x", "format": "parquet"}, "unknown format"),
        ({"data": "/no/such/dir", "format": "lightgcn"}, "no such file"),
        ({"false_negative_fraction": 1.0}, "below 1"),
        ({"false_negative_fraction": -0.1}, "false_negative_fraction"),
        ({"validation_users": 0}, "validation_users"),
    ],
)
def test_bad_arguments(small, kwargs, needle):
    with pytest.raises(GnnoError, match=needle):
        protocols.load(**kwargs)


def test_data_with_no_user_of_two_items_has_no_validation_split(tmp_path):
    for name, text in (
        ("d.train.rating", "0\t1\t1\t0\n1\t0\t1\t0\n"),
        ("d.test.rating", "0\t2\t1\t0\n"),
        ("d.test.negative", "(0,2)\t3\t0\n"),
    ):
        (tmp_path / name).write_text(text)
    with pytest.raises(EmptyInputError, match="no user has two or more training items"):
        protocols.load(tmp_path / "d", "ncf")
