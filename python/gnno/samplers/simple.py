"""Score-free samplers: uniform (RNS) and popularity (PNS)."""

from __future__ import annotations

from gnno import _gnno
from gnno._arrays import finite_float
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler


class UniformSampler(Sampler):
    """Negatives drawn uniformly from each user's non-interacted items.

    Draws map a uniform index onto the complement of the user's sorted row,
    so no draw is ever rejected and heavy users cost the same as light ones.
    """

    def __init__(self, train: Interactions, seed: int = 0) -> None:
        super().__init__(train, seed)
        self._core = _gnno.ProposalSampler(self.train._core, self.seed)


class PopularitySampler(Sampler):
    """Negatives drawn with probability proportional to ``count(i) ** beta``
    over each user's non-interacted items (``beta=0.75`` as in word2vec;
    ``beta=0`` is uniform).

    An alias table over all items is built once; a draw that hits one of the
    user's positives is redrawn, and a user who holds most of the mass falls
    back to an exact scan of the complement. Items with no training
    interaction weigh like a count of 1.
    """

    def __init__(self, train: Interactions, beta: float = 0.75, seed: int = 0) -> None:
        super().__init__(train, seed)
        self.beta = finite_float(beta, "beta", low=0.0)
        self._core = _gnno.ProposalSampler(self.train._core, self.seed, self.beta)

    def _extra_state(self) -> dict:
        return {"beta": self.beta}

    def __repr__(self) -> str:
        return f"PopularitySampler({self.train!r}, beta={self.beta}, seed={self.seed})"
