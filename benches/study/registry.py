"""What the study trains: data sets, samplers, losses and the gain-sampler
hypotheses, in one place.

Every sampler option the study sets is spelled once, in ``OPTION``: the map
from the study's name for an idea to the keyword the sampler's constructor
takes today. A renamed constructor keyword is a one-line change there.
Training settings are never written here: they come from
``gnno.recipes.recipe(protocol, loss)``, the table ``gnno train`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gnno.recipes import DEFAULT_LOSS

#: The samplers of the study, in the order of the tables.
SAMPLERS = ("uniform", "popularity", "dns", "srns", "gain")
#: The losses of the study (``gnno.Trainer``'s), the recipe's default first.
LOSSES = (DEFAULT_LOSS, *(x for x in ("softmax", "bpr", "group") if x != DEFAULT_LOSS))

#: The study's name for a sampler option → the constructor keyword.
OPTION: dict[str, str] = {
    "popularity_exponent": "popularity_beta",  # PopularitySampler
    "dns_candidates": "fresh_candidates",  # DNSSampler
    "srns_memory": "memory",  # SRNSSampler
    "srns_fresh": "fresh",
    "srns_alpha": "variance_weight",
    "srns_temperature": "retain_temperature",
    "srns_history": "history",
    "srns_warmup": "warmup",
    "gain_fresh_candidates": "fresh_candidates",  # GainSampler
    "gain_memory_candidates": "memory_candidates",
    "gain_criterion": "criterion",
    "gain_beta": "gain_beta",
    "gain_alpha": "gain_alpha",
    "gain_veto_threshold": "veto_threshold",
    "gain_warmup": "gain_warmup",
    "gain_window": "gain_window",
}


def options(**named: Any) -> dict[str, Any]:
    """Constructor keywords from the study's option names (``OPTION``)."""
    return {OPTION[name]: value for name, value in named.items()}


#: Each sampler's settings in the main comparison: the peers at their usual
#: published settings, the gain sampler at GainSampler's defaults. SRNS's
#: variance term ramps up over 10 epochs (SRNSSampler's default: most runs
#: at the recipe converge in 20 to 60 epochs).
SAMPLER_OPTIONS: dict[str, dict[str, Any]] = {
    "uniform": {},
    "popularity": options(popularity_exponent=0.75),
    "dns": options(dns_candidates=5),
    "srns": options(
        srns_memory=8,
        srns_fresh=64,
        srns_alpha=5.0,
        srns_temperature=10.0,
        srns_history=5,
        srns_warmup=10,
    ),
    "gain": {},
}


@dataclass(frozen=True)
class Dataset:
    """A study data set: what ``gnno.protocols.load`` gets, the recipe's
    protocol, seeds and the metrics the report shows."""

    name: str
    title: str
    path: str | None  # relative to the data folder; None: synthetic
    format: str | None  # gnno.protocols format
    seeds: int
    metrics: tuple[tuple[str, str], ...]  # (label, key) of the test metrics shown
    false_negative_fraction: float = 0.0
    validation_users: int | None = None

    @property
    def protocol(self) -> str:
        """The recipe's protocol name (``gnno.recipes.PROTOCOLS``)."""
        return self.format or "synthetic"

    @property
    def headline(self) -> str:
        """The test metric differences are reported in."""
        return self.metrics[1][1]


_NCF = (("HR@10", "hr@10"), ("NDCG@10", "ndcg@10"), ("N@1", "ndcg@1"), ("N@3", "ndcg@3"))
_FULL = (("Recall@20", "recall@20"), ("NDCG@20", "ndcg@20"))

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "ml1m",
            "MovieLens-1M, NCF split (1 target + 99 listed negatives)",
            "ml-1m-ncf/ml-1m",
            "ncf",
            3,
            _NCF,
        ),
        Dataset(
            "ml1m-fn30",
            "MovieLens-1M, NCF split, 30% of training positives planted as false negatives",
            "ml-1m-ncf/ml-1m",
            "ncf",
            3,
            _NCF,
            false_negative_fraction=0.3,
        ),
        Dataset(
            "gowalla",
            "Gowalla, LightGCN split (full ranking; validation on 6000 users)",
            "gowalla",
            "lightgcn",
            2,
            _FULL,
            validation_users=6000,
        ),
        Dataset(
            "gowalla-fn30",
            "Gowalla, LightGCN split, 30% of training positives planted as false negatives",
            "gowalla",
            "lightgcn",
            2,
            _FULL,
            false_negative_fraction=0.3,
            validation_users=6000,
        ),
        Dataset(
            "synthetic",
            "Synthetic data (`gnno.datasets.synthetic()`, full ranking)",
            None,
            None,
            # Three: the gain issue's hypotheses need three paired seeds, and
            # this is where runs cost seconds.
            3,
            _FULL,
        ),
        # --quick: a tiny synthetic data set written as CSV and loaded like a
        # real one (leave-one-out, full ranking, 30% planted false negatives).
        Dataset(
            "tiny",
            "Tiny synthetic data as CSV (leave-one-out, 30% planted false negatives)",
            "tiny.csv",
            "csv",
            2,
            (("HR@10", "hr@10"), ("NDCG@10", "ndcg@10"), ("Recall@20", "recall@20")),
            false_negative_fraction=0.3,
        ),
    )
}

#: The data sets of the full study, in the report's order (``gowalla-fn30``
#: is planned on request: ``--datasets gowalla-fn30``).
STUDY_DATASETS = ("ml1m", "ml1m-fn30", "gowalla", "synthetic")


#: A hypothesis runs on a key data set only once it has held its own against
#: DNS on the value (the same data with planted false negatives, where a gain
#: that screens them out has the most to win): a variant that trails DNS
#: there in every seed's pair is not spent hours on where there is less to win.
SCREENS = {"ml1m": "ml1m-fn30"}


@dataclass(frozen=True)
class Hypothesis:
    """A sampler variant (the gain sampler's, unless ``sampler`` says
    otherwise): a setting of the existing engine, compared paired by seed
    against DNS trained with the same loss and settings. ``options`` is
    ``None`` for an idea the engine cannot express yet; ``exclude_known``
    makes it an oracle that never draws a known false negative."""

    name: str
    claim: str
    options: dict[str, Any] | None
    loss: str = DEFAULT_LOSS
    train: dict[str, Any] = field(default_factory=dict)
    #: The synthetic data knows every false negative (the unobserved liked
    #: items) and trains in seconds, so every variant runs there too.
    datasets: tuple[str, ...] = ("ml1m", "ml1m-fn30", "synthetic", "tiny")
    sampler: str = "gain"
    exclude_known: bool = False

    @property
    def supported(self) -> bool:
        return self.options is not None


_MANY = {"negatives_per_user": 64, "positives_per_group": 16}

#: Where the known false negatives are not validation or test items: the
#: planted ones (ML-1M-fn30, tiny) and the synthetic data's unobserved liked
#: items. On ML-1M and Gowalla an oracle would exclude nothing.
_ORACLE_DATASETS = ("ml1m-fn30", "synthetic", "tiny")

HYPOTHESES: tuple[Hypothesis, ...] = (
    Hypothesis("gain-default", "GainSampler's defaults (5 fresh candidates, β=1)", {}),
    Hypothesis(
        "oracle-dns",
        "an oracle, not a method: DNS that never draws a known false negative (the planted "
        "positives, the synthetic data's unobserved liked items; never validation or test "
        "items), so its lead over DNS is the most that detecting false negatives could win. "
        "The two data sets test it differently: ML-1M-fn30's test ranks each target among "
        "99 items the user never rated, never a planted one, while the synthetic data's full "
        "ranking counts the unobserved liked items as negatives too, so an oracle there "
        "also stops training against the test's competitors",
        {},
        datasets=_ORACLE_DATASETS,
        sampler="dns",
        exclude_known=True,
    ),
    *(
        Hypothesis(
            f"fresh-{c}",
            f"a larger candidate pool ({c} fresh candidates) with the gain criterion keeps "
            "DNS's hardness while the gain screens out the extra false negatives",
            options(gain_fresh_candidates=c, gain_criterion="gain"),
        )
        for c in (10, 16, 32)
    ),
    Hypothesis(
        "fresh-16-hardness",
        "control for fresh-16: the same pool picked by hardness alone (no gain)",
        options(gain_fresh_candidates=16, gain_criterion="hardness"),
    ),
    *(
        Hypothesis(
            f"beta-{b:g}",
            f"gain weight β={b:g} in σ(s_j − s_i)·max(0, 1 + β(G − g0))",
            options(gain_beta=b),
        )
        for b in (0.0, 3.0, 10.0)
    ),
    Hypothesis(
        "fresh-16-beta-3",
        "a larger pool and a stronger gain together",
        options(gain_fresh_candidates=16, gain_beta=3.0),
    ),
    Hypothesis(
        "group-many",
        "the group-wise loss with many negatives shared per user (64 per group of 16 "
        "positives), which the GDNS paper credits for most of its gain",
        {},
        loss="group",
        train=_MANY,
    ),
    Hypothesis(
        "group-many-fresh-16",
        "the group-wise loss with many negatives and a 16-candidate gain pool",
        options(gain_fresh_candidates=16),
        loss="group",
        train=_MANY,
    ),
    Hypothesis(
        "per-user-g",
        "G standardised per user (z-score against the user's memory gains), so that β means "
        "the same for every user; β = 1 over 16 candidates",
        options(gain_criterion="gain_normalized", gain_beta=1.0, gain_fresh_candidates=16),
    ),
    Hypothesis(
        "per-user-g-5",
        "per-user-g over DNS's own 5 candidates: the standardised gain only reorders the "
        "pool DNS picks from, so the hardness stays near DNS's",
        options(gain_criterion="gain_normalized", gain_beta=1.0),
    ),
    *(
        Hypothesis(
            f"per-user-g-5-beta-{b:g}",
            f"per-user-g-5 with a gentler weight β={b:g}: the weight 1 + β·z vetoes only "
            "candidates whose standardised gain is below −1/β, so hardness stays closer to DNS's",
            options(gain_criterion="gain_normalized", gain_beta=b),
        )
        for b in (0.3, 0.1)
    ),
    *(
        Hypothesis(
            f"gain-veto-{c}",
            f"the gain as a veto: the hardest of {c} candidates whose gain does not mark it "
            "a likely false negative (G below g0: its H did not fall)",
            options(gain_criterion="gain_veto", gain_fresh_candidates=c, gain_veto_threshold=0.5),
        )
        for c in (16, 32)
    ),
    Hypothesis(
        "ramped-beta",
        "a gain weight β = 3 that ramps up from 0 over the first 10 epochs (SRNS's warm-up)",
        options(gain_beta=3.0, gain_warmup=10.0),
    ),
    Hypothesis(
        "memory-3",
        "3 memory slots (the hardest candidates seen, carrying the running gain) beside "
        "the 5 fresh candidates",
        options(gain_memory_candidates=3),
    ),
    Hypothesis(
        "h-slope",
        "the fall of H per refresh over the last 10 refreshes (about one ML-1M epoch at "
        "the recipe, the paper's step) instead of one refresh of 100 steps, over which H "
        "barely moves: for memory slots from their score histories, at draw time against "
        "the snapshot 10 refreshes back",
        options(gain_window=10),
    ),
)


__all__ = [
    "SAMPLERS",
    "LOSSES",
    "OPTION",
    "options",
    "SAMPLER_OPTIONS",
    "Dataset",
    "DATASETS",
    "STUDY_DATASETS",
    "SCREENS",
    "Hypothesis",
    "HYPOTHESES",
]
