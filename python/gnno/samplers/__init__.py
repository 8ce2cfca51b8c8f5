"""Negative samplers sharing one interface (see ``gnno.samplers.base``)."""

from __future__ import annotations

from typing import Any

from gnno.exceptions import GnnoError
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler
from gnno.samplers.dynamic import DNSSampler, GainSampler, ScoreSampler, SRNSSampler
from gnno.samplers.sharded import ShardedSampler
from gnno.samplers.simple import PopularitySampler, UniformSampler

#: Sampler classes by the short name the command line and configs use.
SAMPLERS: dict[str, type[Sampler]] = {
    "uniform": UniformSampler,
    "popularity": PopularitySampler,
    "dns": DNSSampler,
    "srns": SRNSSampler,
    "gain": GainSampler,
}


def build_sampler(name: str, train: Interactions, seed: int = 0, **options: Any) -> Sampler:
    """Builds the sampler called ``name`` (see ``SAMPLERS``) on ``train``."""
    cls = SAMPLERS.get(name)
    if cls is None:
        raise GnnoError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return cls(train, seed=seed, **options)


__all__ = [
    "Sampler",
    "ScoreSampler",
    "UniformSampler",
    "PopularitySampler",
    "DNSSampler",
    "SRNSSampler",
    "GainSampler",
    "ShardedSampler",
    "SAMPLERS",
    "build_sampler",
]
