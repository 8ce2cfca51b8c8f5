"""gnno: hard-negative sampling for recommender training, with a Rust core.

The gain-tuning dynamic negative sampler (GDNS, Zhu et al., WWW 2022), its
peers (SRNS, DNS, popularity, uniform), the GMF model and the losses and
evaluation protocols they are measured with.
"""

from gnno import datasets, exceptions, kernels
from gnno._gnno import __version__
from gnno.interactions import Interactions
from gnno.kernels import get_num_threads, set_num_threads
from gnno.samplers import (
    DNSSampler,
    GainSampler,
    PopularitySampler,
    Sampler,
    ShardedSampler,
    SRNSSampler,
    UniformSampler,
    build_sampler,
)

# Names whose modules import torch load on first use, so that `import gnno`
# stays quick for code that only samples.
_LAZY = {
    "GMF": "gnno.models",
    "bpr_loss": "gnno.losses",
    "group_hinge_loss": "gnno.losses",
    "softmax_loss": "gnno.losses",
    "group_softmax_loss": "gnno.losses",
    "evaluate_sampled": "gnno.evaluation",
    "evaluate_full": "gnno.evaluation",
    "Trainer": "gnno.training",
    "TrainResult": "gnno.training",
    "train": "gnno.training",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gnno' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "ShardedSampler",
    "build_sampler",
    "datasets",
    "GMF",
    "bpr_loss",
    "group_hinge_loss",
    "softmax_loss",
    "group_softmax_loss",
    "evaluate_sampled",
    "evaluate_full",
    "Trainer",
    "TrainResult",
    "train",
]
