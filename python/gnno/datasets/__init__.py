"""Datasets for recommender experiments: loaders for the usual file formats,
splits, and a synthetic generator whose false negatives are known.

Everything here is plain numpy on top of ``gnno.Interactions``; nothing is
downloaded.
"""

from gnno.datasets.loaders import NCFData, load_csv, load_lightgcn, load_movielens, load_ncf
from gnno.datasets.records import InteractionLog

__all__ = [
    "InteractionLog",
    "NCFData",
    "load_ncf",
    "load_lightgcn",
    "load_movielens",
    "load_csv",
]
