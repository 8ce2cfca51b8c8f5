"""The README's quick-start loop runs as written, with every sampler."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import gnno

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_code() -> str:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize(
    "sampler",
    [
        "gnno.GainSampler(train, seed=0)",
        "gnno.UniformSampler(train, seed=0)",
        "gnno.PopularitySampler(train, seed=0)",
        "gnno.DNSSampler(train, seed=0)",
        "gnno.SRNSSampler(train, seed=0)",
    ],
)
def test_quick_start_loop_trains_with_each_sampler(sampler):
    code = quick_start_code()
    assert "gnno.GainSampler(train, seed=0)" in code
    code = code.replace("gnno.GainSampler(train, seed=0)", sampler).replace("range(20)", "range(3)")
    data = gnno.datasets.synthetic(n_users=200, n_items=150, seed=1)
    users, items = data.train.to_pairs()
    torch.manual_seed(0)
    scope = {"users": users, "items": items}
    exec(compile(code, "README.md", "exec"), scope)
    model, train = scope["model"], scope["train"]
    # It trained: positives now outscore random items on average.
    u, i = (torch.from_numpy(a) for a in train.to_pairs())
    with torch.no_grad():
        pos = model(u, i).mean()
        rnd = model(u, torch.randint(0, train.n_items, (len(u),))).mean()
    assert pos > rnd
    assert np.isfinite(scope["loss"].item())
