"""Score-free samplers: uniform (RNS) and popularity (PNS)."""

from __future__ import annotations

from typing import Any

from gnno import _gnno
from gnno._arrays import finite_float
from gnno.exceptions import GnnoError
from gnno.interactions import Interactions
from gnno.samplers.base import Sampler


class UniformSampler(Sampler):
    """Negatives drawn uniformly from each user's non-interacted items.

    Draws map a uniform index onto the complement of the user's sorted row,
    so no draw is ever rejected and heavy users cost the same as light ones.
    """

    def __init__(self, train: Interactions, *, seed: int = 0) -> None:
        super().__init__(train, seed=seed)
        self._core = _gnno.ProposalSampler(self.train._core, self.seed)


class PopularitySampler(Sampler):
    """Negatives drawn with probability proportional to
    ``count(i) ** popularity_beta`` over each user's non-interacted items
    (``popularity_beta=0.75`` as in word2vec; ``0`` is uniform).

    An alias table over all items is built once; a draw that hits one of the
    user's positives is redrawn, and a user who holds most of the mass falls
    back to an exact scan of the complement. Items with no training
    interaction weigh like a count of 1.
    """

    def __init__(
        self, train: Interactions, *, popularity_beta: float = 0.75, seed: int = 0
    ) -> None:
        super().__init__(train, seed=seed)
        self.popularity_beta = finite_float(popularity_beta, "popularity_beta", low=0.0)
        self._options = {"popularity_beta": self.popularity_beta}
        self._core = _gnno.ProposalSampler(self.train._core, self.seed, self.popularity_beta)

    def _extra_state(self) -> dict[str, Any]:
        return {"popularity_beta": self.popularity_beta}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        saved = state.get("popularity_beta")
        if not isinstance(saved, (int, float)) or saved != self.popularity_beta:
            raise GnnoError(
                f"state was saved with popularity_beta={saved!r}, "
                f"this sampler has popularity_beta={self.popularity_beta!r}"
            )

    def __repr__(self) -> str:
        return (
            f"PopularitySampler({self.train!r}, popularity_beta={self.popularity_beta}, "
            f"seed={self.seed})"
        )
