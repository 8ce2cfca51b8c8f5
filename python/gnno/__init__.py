"""gnno: hard-negative sampling for recommender training, with a Rust core.

The gain-tuning dynamic negative sampler (GDNS, Zhu et al., WWW 2022), its
peers (SRNS, DNS, popularity, uniform), the GMF model and the losses and
evaluation protocols they are measured with.
"""

from gnno import exceptions, kernels
from gnno._gnno import __version__, get_num_threads, set_num_threads
from gnno.interactions import Interactions
from gnno.samplers import (
    DNSSampler,
    GainSampler,
    PopularitySampler,
    Sampler,
    SRNSSampler,
    UniformSampler,
    build_sampler,
)

__all__ = [
    "__version__",
    "exceptions",
    "kernels",
    "get_num_threads",
    "set_num_threads",
    "Interactions",
    "Sampler",
    "UniformSampler",
    "PopularitySampler",
    "DNSSampler",
    "SRNSSampler",
    "GainSampler",
    "build_sampler",
]
