"""Datasets for recommender experiments: loaders for the usual file formats,
splits, and a synthetic generator whose false negatives are known.

Everything here is plain numpy on top of ``gnno.Interactions``; nothing is
downloaded.
"""

from gnno.datasets.loaders import NCFData, load_csv, load_lightgcn, load_movielens, load_ncf
from gnno.datasets.records import InteractionLog
from gnno.datasets.splits import k_core, leave_one_out, ratio_split, remap_ids
from gnno.datasets.synthetic import SyntheticData, synthetic

__all__ = [
    "InteractionLog",
    "NCFData",
    "load_ncf",
    "load_lightgcn",
    "load_movielens",
    "load_csv",
    "remap_ids",
    "k_core",
    "leave_one_out",
    "ratio_split",
    "SyntheticData",
    "synthetic",
]
