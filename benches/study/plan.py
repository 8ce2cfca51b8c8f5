"""The plan: every run of the study, most informative first.

A run is what it is (data set, sampler or hypothesis, loss, seed) plus its
exact settings: the sampler's options and the training settings of
``gnno.recipes.recipe`` with any overrides. ``RunSpec.key`` names it by both
(a digest of the settings), so a changed setting is a new run and the store
never hands back a stale one.

Compute is limited and the study is stopped and resumed across sessions, so
the order matters: first seed 0 of every sampler with the recipe's default
loss on ML-1M, then gain against DNS on more seeds, then the other losses,
the planted false negatives, Gowalla, the synthetic data, the
hypotheses, and last the other samplers' other losses on the planted false
negatives (``TIERS`` lists them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gnno.recipes import recipe

from .registry import (
    DATASETS,
    HYPOTHESES,
    LOSSES,
    SAMPLER_OPTIONS,
    SAMPLERS,
    SCREENS,
    Hypothesis,
)
from .store import Store
from .summarize import outside_spread, paired

#: What each priority tier holds (the plan is sorted by tier, then seed).
#: The tier of every hypothesis run (a main run never has it).
HYPOTHESIS_TIER = 6

TIERS = (
    "ML-1M, seed 0: every sampler, default loss",
    "ML-1M: gain and DNS on more seeds, default loss",
    "ML-1M, seed 0: every sampler, other losses",
    "ML-1M-fn30: gain and DNS, default loss",
    "Gowalla, seed 0: every sampler, default loss",
    "ML-1M: the other samplers on more seeds, default loss; ML-1M-fn30 seed 0: every sampler",
    "hypotheses on ML-1M and ML-1M-fn30",
    "Gowalla: gain and DNS on more seeds; synthetic: every sampler, default loss",
    "the rest: other losses on more seeds and data sets",
    "ML-1M-fn30: uniform, popularity and SRNS with the other losses, beyond the gain test's pair",
)


@dataclass(frozen=True)
class RunSpec:
    """One training run."""

    dataset: str
    sampler: str  # a key of gnno.samplers.SAMPLERS
    loss: str
    seed: int
    options: dict[str, Any]  # the sampler's constructor keywords
    train: dict[str, Any]  # the training settings (recipe + overrides)
    diagnostics: bool = False  # record H and G of the memory every epoch
    tier: int = 0
    hypothesis: bool = False  # planned only as a hypothesis run or its baseline
    #: The sampler never draws the data set's known false negatives other
    #: than validation and test items (``data.known_false_negatives``): an
    #: oracle, the most that detecting false negatives could win.
    exclude_known: bool = False

    @property
    def label(self) -> str:
        """What the run is, without its settings."""
        return f"{self.dataset}.{self.sampler}.{self.loss}.seed{self.seed}"

    @property
    def digest(self) -> str:
        what: dict[str, Any] = {
            "sampler": self.sampler,
            "options": self.options,
            "train": self.train,
        }
        if self.exclude_known:  # absent otherwise: older runs keep their keys
            what["exclude_known"] = True
        settings = json.dumps(what, sort_keys=True)
        return hashlib.sha1(settings.encode()).hexdigest()[:10]

    @property
    def key(self) -> str:
        """``label`` and a digest of the exact settings: the store's file name."""
        return f"{self.label}.{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), key=self.key, label=self.label)


@dataclass
class PlanConfig:
    """What to plan: data sets, seeds per data set, samplers, losses, and
    an optional epoch cap (a capped run is a different run)."""

    datasets: tuple[str, ...]
    seeds: dict[str, int]
    samplers: tuple[str, ...] = SAMPLERS
    losses: tuple[str, ...] = LOSSES
    hypotheses: tuple[str, ...] | None = None  # names to plan (None: every supported one)
    epochs_cap: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # on every run's settings


def train_settings(dataset: str, loss: str, config: PlanConfig, **extra: Any) -> dict[str, Any]:
    """The recipe for ``dataset``'s protocol and ``loss``, with overrides."""
    settings = recipe(DATASETS[dataset].protocol, loss)
    settings.update(extra)
    settings.update(config.overrides)
    if config.epochs_cap is not None:
        settings["epochs"] = min(settings["epochs"], config.epochs_cap)
    return settings


def _tier(dataset: str, sampler: str, loss: str, seed: int) -> int:
    default = loss == LOSSES[0]
    pair = sampler in ("gain", "dns")
    if dataset in ("ml1m", "tiny"):
        if default and seed == 0:
            return 0
        if default and pair:
            return 1
        if seed == 0:
            return 2
        return 5 if default else 8
    if dataset == "ml1m-fn30":
        if default and pair:
            return 3
        if default and seed == 0:
            return 5
        # The planted false negatives are there for the gain test (gain
        # against DNS); the other samplers' other losses come last.
        return 8 if pair or default else 9
    if dataset == "gowalla":
        if default and seed == 0:
            return 4
        return 7 if default and pair else 8
    return 7 if default else 8


def main_runs(config: PlanConfig) -> list[RunSpec]:
    """The main comparison: every sampler with every loss at the recipe."""
    return [
        RunSpec(
            dataset,
            sampler,
            loss,
            seed,
            dict(SAMPLER_OPTIONS[sampler]),
            train_settings(dataset, loss, config),
            diagnostics=sampler == "gain",
            tier=_tier(dataset, sampler, loss, seed),
        )
        for dataset in config.datasets
        for seed in range(config.seeds[dataset])
        for loss in config.losses
        for sampler in config.samplers
    ]


def plan(config: PlanConfig, store: Store | None = None) -> list[RunSpec]:
    """Every run of ``config``, most informative first (see ``TIERS``); a
    run planned twice (a hypothesis whose settings are the main
    comparison's) appears once, at its earlier tier, and counts as a main
    run. With the run ``store``, hypotheses are screened (``screen``)."""
    runs: dict[str, RunSpec] = {}
    for spec in main_runs(config) + hypothesis_runs(config, store):
        old = runs.get(spec.key)
        if old is None:
            runs[spec.key] = spec
            continue
        first = spec if spec.tier < old.tier else old
        runs[spec.key] = replace(first, hypothesis=old.hypothesis and spec.hypothesis)
    order = {name: n for n, name in enumerate(config.datasets)}
    return sorted(
        runs.values(),
        key=lambda r: (
            r.tier,
            r.seed,
            order[r.dataset],
            LOSSES.index(r.loss) if r.loss in LOSSES else 9,
            SAMPLERS.index(r.sampler),
            r.digest,
        ),
    )


def hypothesis_runs(config: PlanConfig, store: Store | None = None) -> list[RunSpec]:
    """Each supported hypothesis on its data sets, and its DNS baseline (DNS
    with the same loss and training settings: the main comparison's DNS run
    when the hypothesis changes only the sampler). A hypothesis run whose
    settings equal a main run's is that run (same key). With the run
    ``store``, a data set with a screen (``SCREENS``) gets only the
    hypotheses that passed it."""
    out: list[RunSpec] = []
    if not {"gain", "dns"} <= set(config.samplers):
        return out
    for hyp, dataset in selected_hypotheses(config):
        if screen(hyp, dataset, config, store)[0] != "run":
            continue
        for seed in range(config.seeds[dataset]):
            spec = hypothesis_spec(hyp, dataset, seed, config)
            out += [spec, baseline(spec)]
    return out


def selected_hypotheses(config: PlanConfig) -> list[tuple[Hypothesis, str]]:
    """Each supported hypothesis ``config`` selects, with each of its data
    sets in ``config`` (before any screen)."""
    return [
        (hyp, dataset)
        for hyp in HYPOTHESES
        if hyp.supported
        and hyp.loss in config.losses
        and (config.hypotheses is None or hyp.name in config.hypotheses)
        for dataset in hyp.datasets
        if dataset in config.datasets
    ]


def screen(
    hyp: Hypothesis, dataset: str, config: PlanConfig, store: Store | None
) -> tuple[str, str]:
    """Whether ``hyp`` is planned on ``dataset``: ``("run", "")``, or
    ``("wait", why)`` while its pairs on the screen data set
    (``SCREENS[dataset]``, every seed the registry gives it) are unfinished,
    or ``("out", why)`` when it trails DNS there in every pair. Without a
    ``store`` (nothing known yet) every hypothesis runs."""
    first = SCREENS.get(dataset)
    if store is None or first is None:
        return "run", ""
    seeds = config.seeds.get(first, DATASETS[first].seeds)
    pairs = []
    for seed in range(seeds):
        spec = hypothesis_spec(hyp, first, seed, config)
        pairs.append((store.get(spec.key), store.get(baseline(spec).key)))
    diffs = paired(pairs, DATASETS[first].headline)["metric"]
    if len(diffs) < seeds:
        return "wait", f"waits for its {first} screen ({len(diffs)}/{seeds} pairs)"
    mean = sum(diffs) / len(diffs)
    if mean < 0 and outside_spread(diffs):
        return "out", f"screened out: trails DNS on {first} in every pair (Δ {mean:+.4f})"
    return "run", ""


def hypothesis_spec(hyp: Hypothesis, dataset: str, seed: int, config: PlanConfig) -> RunSpec:
    """The run of ``hyp`` on ``dataset`` for ``seed``."""
    return RunSpec(
        dataset,
        hyp.sampler,
        hyp.loss,
        seed,
        dict(SAMPLER_OPTIONS[hyp.sampler], **(hyp.options or {})),
        train_settings(dataset, hyp.loss, config, **hyp.train),
        diagnostics=hyp.sampler == "gain",
        tier=HYPOTHESIS_TIER,
        hypothesis=True,
        exclude_known=hyp.exclude_known,
    )


def baseline(spec: RunSpec) -> RunSpec:
    """The DNS run ``spec`` is paired with: same data, loss, seed and training."""
    return RunSpec(
        spec.dataset,
        "dns",
        spec.loss,
        spec.seed,
        dict(SAMPLER_OPTIONS["dns"]),
        dict(spec.train),
        tier=spec.tier,
        hypothesis=spec.hypothesis,
    )


__all__ = [
    "TIERS",
    "HYPOTHESIS_TIER",
    "RunSpec",
    "PlanConfig",
    "plan",
    "main_runs",
    "train_settings",
    "hypothesis_runs",
    "screen",
    "hypothesis_spec",
    "baseline",
]
