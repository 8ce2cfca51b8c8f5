"""Negative samplers sharing one interface (see ``gnno.samplers.base``)."""

from __future__ import annotations

import inspect
from typing import Any

from gnno.exceptions import GnnoError
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler
from gnno.samplers.dynamic import (
    Criterion,
    DNSSampler,
    GainSampler,
    Retain,
    ScoreSampler,
    SRNSSampler,
)
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


#: Option names of earlier versions and what they are called now, for a
#: helpful error (see DEVELOPERS.md, "Sampler options").
RENAMED_OPTIONS: dict[str, str] = {
    "beta": "popularity_beta (the popularity exponent) or gain_beta (the gain sampler's "
    "gain weight)",
    "proposal_beta": "popularity_beta",
    "alpha": "gain_alpha (the gain's moving-average α) or variance_weight (SRNS)",
    "temperature": "retain_temperature (SRNS) or draw_temperature (gain)",
    "slots": "memory",
}


def sampler_options(name: str) -> tuple[str, ...]:
    """The keyword options of sampler ``name``'s constructor (aliases
    included), ``seed`` among them."""
    cls = _sampler_class(name)
    params = inspect.signature(cls.__init__).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _sampler_class(name: str) -> type[Sampler]:
    cls = SAMPLERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise GnnoError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return cls


def build_sampler(name: str, train: Interactions, **options: Any) -> Sampler:
    """Builds the sampler called ``name`` (see ``SAMPLERS``) on ``train``
    with keyword ``options`` (``seed`` among them), the constructor's names:
    ``build_sampler("gain", train, seed=0, memory=16)``. The command line's
    ``-S key=value`` options arrive here. An option the sampler does not take
    is a ``GnnoError`` listing those it takes."""
    cls = _sampler_class(name)
    known = sampler_options(name)
    for key in options:
        if key not in known:
            hint = RENAMED_OPTIONS.get(key)
            renamed = f" ({key!r} is now {hint})" if hint else ""
            raise GnnoError(
                f"sampler {name!r} takes no option {key!r}{renamed}; its options are "
                f"{', '.join(known)}"
            )
    return cls(train, **options)


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
    "RENAMED_OPTIONS",
    "Retain",
    "Criterion",
    "build_sampler",
    "sampler_options",
]
