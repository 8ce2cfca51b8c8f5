"""Negative samplers sharing one interface (see ``gnno.samplers.base``)."""

from gnno.samplers.base import Sampler
from gnno.samplers.simple import PopularitySampler, UniformSampler

__all__ = ["Sampler", "UniformSampler", "PopularitySampler"]
