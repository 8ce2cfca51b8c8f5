"""The recipe search: training settings chosen on validation data only.

``python benches/study recipe [--budget MINUTES] [--datasets ml1m,gowalla]``

GMF with uniform negatives (the recipe must not favour one hard sampler) on
ML-1M and Gowalla, seed 0. Every configuration is one run of the study's
runner; its record is kept in ``docs/study/recipe/<key>.json`` (the key
digests the exact settings), so the search resumes where it stopped and a
configuration is never trained twice. Selection reads only the best
validation metric of each run (``validation[metric]``, the split held out
of the training data); test metrics are recorded but shown only for the
chosen configuration.

Each ML-1M run costs minutes, so the search is staged rather than a grid:

1. loss: softmax, group_softmax, bpr and group, each at
   ``gnno.recipes.recipe(protocol, loss)``;
2. one axis at a time around the best so far, in this order: L2 (×⅓, ×3),
   negatives per positive ×4 (group losses: per group ×2), dim (64, 128), a
   per-item bias, temperature (softmax losses), learning rate (×½, ×2),
   batch size (×2), patience (20); each axis keeps its best value before the
   next one is tried.

About 18 runs per data set. A Gowalla run costs 35-70 minutes here, so
Gowalla's search departs from that plan (``PLANS``): it starts from the loss
ML-1M's search chose (softmax led every other loss there by at least 0.019
validation NDCG@10) and tries the number of negatives before L2, since that
is where the published MF results that reach Gowalla's anchor differ from
the recipe (BARS's MF-BPR with 300 negatives, MF-CCL with 800).

``--confirm`` then trains the chosen configuration and ``gnno.recipes``'
one at ``CONFIRM_SEEDS`` too (each seed draws its own validation split;
the recipe's runs are taken from the study's store where it has them), so
that a lead found at seed 0 is paired over seeds before anyone acts on it.

The chosen settings are reported; copying them into
``gnno.recipes.RECIPES`` is a deliberate, reviewed step.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gnno.recipes import recipe

from .data import ROOT, StudyData, load
from .plan import RunSpec
from .registry import DATASETS
from .store import Store
from .summarize import fmt, outside_spread

SEARCH_DATASETS = ("ml1m", "gowalla")
#: Stage 1: the losses, each at its recipe.
SEARCH_LOSSES = ("softmax", "group_softmax", "bpr", "group")
#: Stage 2's axes: name → values (a function of the best settings so far).
#: L2 scales the best weight (on the batch's rows); the published MF results
#: that reach the anchors use many negatives (BARS's MF-BPR with 300, MF-CCL
#: with 800 on Gowalla).
AXES: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "l2": lambda s: [float(f"{s['l2'] / 3:.3g}"), float(f"{s['l2'] * 3:.3g}")],
    "negatives": lambda s: [s["negatives"], s["negatives"] * 4],
    "negatives_per_user": lambda s: [s["negatives_per_user"], s["negatives_per_user"] * 2],
    "dim": lambda s: [64, 128],
    "item_bias": lambda s: [False, True],
    "temperature": lambda s: [0.1, s["temperature"], 0.5],
    "lr": lambda s: [s["lr"] / 2, s["lr"], s["lr"] * 2],
    "batch_size": lambda s: [s["batch_size"], s["batch_size"] * 2],
    "patience": lambda s: [s["patience"], 20],
}
#: Stage 2's order of axes unless ``PLANS`` says otherwise.
ORDER = tuple(AXES)
#: Seeds besides the search's own (0) at which ``--confirm`` pairs the
#: chosen configuration with the recipe's.
CONFIRM_SEEDS = (1, 2)


@dataclass(frozen=True)
class SearchPlan:
    """What a data set's search tries: the losses of stage 1, then the axes."""

    losses: tuple[str, ...] = SEARCH_LOSSES
    order: tuple[str, ...] = ORDER


#: Data sets whose search departs from the default plan (see the module's
#: docstring for why).
PLANS: dict[str, SearchPlan] = {
    "gowalla": SearchPlan(
        losses=("softmax",),
        order=("negatives", "l2", *(a for a in ORDER if a not in ("l2", "negatives"))),
    ),
}
#: Axes that matter only for some losses.
AXIS_LOSSES = {
    "negatives": ("bpr", "softmax"),
    "temperature": ("softmax", "group_softmax"),
    "negatives_per_user": ("group", "group_softmax"),
}
#: Columns of the report's table of configurations.
SHOWN = (
    "dim",
    "item_bias",
    "lr",
    "l2",
    "negatives",
    "negatives_per_user",
    "temperature",
    "batch_size",
    "patience",
)


class RecipeStore(Store):
    """The search's run records (``docs/study/recipe/``)."""


def spec_for(
    dataset: str, settings: dict[str, Any], epochs_cap: int | None, seed: int = 0
) -> RunSpec:
    train = dict(settings)
    if epochs_cap is not None:
        train["epochs"] = min(train["epochs"], epochs_cap)
    return RunSpec(dataset, "uniform", train.pop("loss"), seed, {}, train)


def recipe_settings(dataset: str, loss: str) -> dict[str, Any]:
    """``gnno.recipes``' configuration for ``dataset`` with ``loss``, as the
    search spells a configuration."""
    return dict(recipe(DATASETS[dataset].protocol, loss), loss=loss)


def confirmation(
    dataset: str,
    chosen_settings: dict[str, Any],
    cap: int | None,
    find: Callable[[str], dict[str, Any] | None],
) -> dict[str, Any] | None:
    """The chosen configuration against the recipe's, paired by seed (seed
    0 and ``CONFIRM_SEEDS``) over the seeds where ``find(key)`` has both:
    validation differences, and the two test metrics for information.
    ``None`` when the chosen configuration is the recipe's."""
    mine = recipe_settings(dataset, chosen_settings["loss"])
    if mine == chosen_settings:
        return None
    pairs = []
    for seed in (0, *CONFIRM_SEEDS):
        a = find(spec_for(dataset, chosen_settings, cap, seed).key)
        b = find(spec_for(dataset, mine, cap, seed).key)
        if a is not None and b is not None:
            pairs.append((seed, a, b))
    return {"pairs": pairs}


def confirmation_line(found: dict[str, Any]) -> str:
    pairs = found["pairs"]
    if len(pairs) < 2:
        return (
            f"Not yet confirmed over seeds ({len(pairs)} of {1 + len(CONFIRM_SEEDS)} seeds paired "
            "with the recipe's configuration; `python benches/study recipe --confirm` trains them)."
        )
    metric = pairs[0][1]["metric"]
    diffs = [a["validation"][metric] - b["validation"][metric] for _, a, b in pairs]
    each = ", ".join(f"seed {seed} {d:+.4f}" for (seed, _, _), d in zip(pairs, diffs, strict=True))
    every = " (every pair)" if outside_spread(diffs) else ""
    test_metric = "hr@10" if "hr@10" in pairs[0][1]["test"] else metric
    chosen_test = float(np.mean([a["test"][test_metric] for _, a, _ in pairs]))
    recipe_test = float(np.mean([b["test"][test_metric] for _, _, b in pairs]))
    return (
        f"Over {len(pairs)} seeds (each with its own validation split), the chosen configuration "
        f"against `gnno.recipes`' one, validation {metric}: {each}; mean "
        f"{fmt(float(np.mean(diffs)), float(np.std(diffs, ddof=1)), len(diffs), sign=True)}"
        f"{every}. Test {test_metric} (for information, means): chosen {chosen_test:.4f}, "
        f"recipe {recipe_test:.4f}."
    )


def search(
    dataset: str,
    evaluate: Callable[[dict[str, Any]], dict[str, Any] | None],
    quick: bool = False,
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Runs the staged search; ``evaluate(settings)`` returns a run record,
    or ``None`` to stop (budget spent, or not in the store when reporting).
    Returns ``(stage, settings, record)`` per configuration, in order."""
    protocol = DATASETS[dataset].protocol
    tried: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[str] = set()

    def score(rec: dict[str, Any]) -> float:
        return float(rec["validation"].get(rec["metric"], float("-inf")))

    def best() -> dict[str, Any]:
        return max(tried, key=lambda t: score(t[2]))[1]

    def trial(stage: str, settings: dict[str, Any]) -> bool:
        key = repr(sorted(settings.items()))
        if key in seen:
            return True
        record = evaluate(settings)
        if record is None:
            return False
        seen.add(key)
        tried.append((stage, settings, record))
        return True

    plan = PLANS.get(dataset, SearchPlan())
    for loss in plan.losses[:2] if quick else plan.losses:
        if not trial("1 loss", dict(recipe(protocol, loss), loss=loss)):
            return tried
    for axis in plan.order[:2] if quick else plan.order:
        base = best()
        if base["loss"] not in AXIS_LOSSES.get(axis, (base["loss"],)):
            continue
        values = AXES[axis](base)
        for value in values[:2] if quick else values:
            if not trial(f"2 {axis}", dict(base, **{axis: value})):
                return tried
    return tried


def chosen(tried: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> int | None:
    """Index of the configuration with the best validation metric."""
    if not tried:
        return None
    scores = [float(r["validation"].get(r["metric"], float("-inf"))) for _, _, r in tried]
    return max(range(len(tried)), key=lambda i: scores[i])


def report_lines(store: Store, quick: bool = False, study: Store | None = None) -> list[str]:
    """The "Recipe search" section of RESULTS.md, from the search's store
    (and the study's, ``study``, for the recipe's runs at more seeds)."""
    if not len(store):
        return []
    lines = [
        "## Recipe search",
        "",
        "GMF with uniform negatives, seed 0, selected on the validation split only "
        "(`benches/study/recipe.py`: each loss at its recipe, then one axis at a time "
        "around the best, L2 first; Gowalla starts from ML-1M's loss and tries the "
        "number of negatives first). Every configuration tried, its best validation "
        "metric and epoch; test metrics only for the chosen one.",
        "",
    ]
    for dataset in SEARCH_DATASETS + (("tiny",) if quick else ()):
        caps = {r["train"]["epochs"] for r in store if r["dataset"] == dataset}
        for cap in sorted(caps):
            find = finder(store, study)
            tried = search(dataset, lookup(find, dataset, cap), quick=quick)
            best = chosen(tried)
            if best is not None:
                lines += dataset_table(dataset, tried, cap)
                found = confirmation(dataset, tried[best][1], cap, find)
                if found is not None:
                    lines += [confirmation_line(found), ""]
    return lines


def finder(store: Store, study: Store | None) -> Callable[[str], dict[str, Any] | None]:
    """A run by key from the search's store, else from the study's."""

    def find(key: str) -> dict[str, Any] | None:
        record = store.get(key)
        if record is None and study is not None:
            record = study.get(key)
        return record

    return find


def lookup(
    find: Callable[[str], dict[str, Any] | None], dataset: str, cap: int
) -> Callable[[dict[str, Any]], Any]:
    def get(settings: dict[str, Any]) -> dict[str, Any] | None:
        return find(spec_for(dataset, settings, cap).key)

    return get


def dataset_table(
    dataset: str, tried: list[tuple[str, dict[str, Any], dict[str, Any]]], cap: int
) -> list[str]:
    best = chosen(tried)
    assert best is not None
    metric = tried[0][2]["metric"]
    head = ["stage", "loss", *SHOWN, f"val {metric}", "best epoch", "epochs", "min"]
    rows = []
    for n, (stage, settings, rec) in enumerate(tried):
        cells = [stage, settings["loss"], *(str(settings.get(k, "")) for k in SHOWN)]
        cells += [
            f"{rec['validation'][metric]:.4f}",
            str(rec["best_epoch"] + 1),
            str(rec["epochs_run"]),
            f"{rec['compute']['wall_seconds'] / 60:.1f}",
        ]
        if n == best:
            cells = [f"**{c}**" for c in cells]
        rows.append(cells)
    rec = tried[best][2]
    test = ", ".join(f"{k} {v:.4f}" for k, v in rec["test"].items())
    from .report import table

    return [
        f"### {DATASETS[dataset].title} (epoch cap {cap})",
        "",
        *table(head, rows),
        "",
        f"Chosen (bold, best validation {metric} {fmt(rec['validation'][metric], 0, 1)}): "
        f"test {test}. {against_recipe(dataset, tried, best)}",
        "",
    ]


def against_recipe(
    dataset: str, tried: list[tuple[str, dict[str, Any], dict[str, Any]]], best: int
) -> str:
    """How the chosen configuration stands against ``gnno.recipes``' one."""
    settings = tried[best][1]
    mine = recipe_settings(dataset, settings["loss"])
    diff = {k: (v, mine.get(k)) for k, v in settings.items() if mine.get(k) != v}
    if not diff:
        return "It is `gnno.recipes`' configuration."
    said = ", ".join(f"{k} {v!r} (recipe: {r!r})" for k, (v, r) in sorted(diff.items()))
    text = f"It differs from `gnno.recipes`' configuration in {said}"
    for _, other, rec in tried:
        if other == mine:
            metric = rec["metric"]
            lead = tried[best][2]["validation"][metric] - rec["validation"][metric]
            text += f"; its validation lead over that configuration is {lead:+.4f}"
            break
    return text + " (see `gnno.recipes` for why the recipe keeps its settings)."


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python benches/study recipe", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, help="output folder (default: docs; --quick: a temp folder)")
    p.add_argument("--datasets", default=",".join(SEARCH_DATASETS), help="comma-separated")
    p.add_argument("--budget", type=float, help="minutes after which no new run is started")
    p.add_argument("--max-runs", type=int, help="train at most this many runs")
    p.add_argument("--epochs-cap", type=int, help="cap every run's epochs")
    p.add_argument("--quick", action="store_true", help="tiny data, 2 epochs, few configurations")
    p.add_argument(
        "--confirm",
        action="store_true",
        help="then pair the chosen configuration with the recipe's at more seeds",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--commit", action="store_true", help="git-commit each record as it lands")
    args = p.parse_args(argv)
    from .cli import quick_folder

    out = args.out or (quick_folder() if args.quick else ROOT / "docs")
    datasets = ("tiny",) if args.quick else tuple(x for x in args.datasets.split(",") if x)
    for d in datasets:
        if d not in DATASETS:
            raise SystemExit(f"unknown data set {d!r}; choose from {', '.join(SEARCH_DATASETS)}")
    cap = args.epochs_cap if args.epochs_cap is not None else (2 if args.quick else None)
    store = RecipeStore(out / "study" / "recipe", commit=args.commit)

    import torch

    import gnno

    torch.set_num_threads(args.threads)
    gnno.set_num_threads(args.threads)
    started = time.monotonic()
    trained = 0
    study = Store(out / "study" / "runs")
    find = finder(store, study)
    for dataset in datasets:
        data: dict[int, StudyData] = {}

        def evaluate(
            settings: dict[str, Any], seed: int = 0, dataset: str = dataset, data: dict = data
        ) -> Any:
            nonlocal trained
            from .runner import train_run

            spec = spec_for(dataset, settings, cap, seed)
            known = find(spec.key)
            if known is not None:
                return known
            if args.max_runs is not None and trained >= args.max_runs:
                return None
            if args.budget is not None and time.monotonic() - started > args.budget * 60:
                return None
            if seed not in data:
                data.clear()  # one data set in memory at a time
                data[seed] = load(dataset, seed, out / "study" / "data")
            record = train_run(spec, data[seed], args.device)
            store.save(record)
            trained += 1
            m = record["metric"]
            print(
                f"recipe {dataset} [{trained}] {spec.key}: val {m} "
                f"{record['validation'][m]:.4f} at epoch {record['best_epoch'] + 1} "
                f"({record['compute']['wall_seconds']:.0f}s)",
                flush=True,
            )
            return record

        tried = search(dataset, evaluate, quick=args.quick)
        best = chosen(tried)
        if best is not None:
            stage, settings, rec = tried[best]
            print(f"{dataset}: best so far ({len(tried)} tried): {settings}", flush=True)
            mine = recipe_settings(dataset, settings["loss"])
            if args.confirm and settings != mine:
                for seed in CONFIRM_SEEDS:
                    for candidate in (settings, mine):
                        if evaluate(candidate, seed) is None:
                            break
                found = confirmation(dataset, settings, cap, find)
                if found is not None:
                    print(f"{dataset}: {confirmation_line(found)}", flush=True)
    print(
        f"recipe search: {trained} runs trained; `python benches/study --report-only` "
        "adds them to RESULTS.md",
        flush=True,
    )
    return 0


__all__ = ["search", "chosen", "report_lines", "main", "RecipeStore", "SEARCH_DATASETS"]
