"""The study's figures (matplotlib, PNG), from the store only.

* ``<dataset>_validation.png``: validation metric and drawn false-negative
  rate per epoch, one line per run, coloured by sampler, one column per loss;
* ``<dataset>_gdns_h_g.png``: the GDNS figure: ``H`` and ``G`` of false and
  true negatives in the gain sampler's memory over epochs (median and
  25–75 % band), and how well each separates them (AUC) per epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .plan import RunSpec
from .registry import DATASETS, LOSSES, SAMPLERS
from .store import Store
from .summarize import per_epoch

COLORS = {
    "uniform": "tab:gray",
    "popularity": "tab:olive",
    "dns": "tab:blue",
    "srns": "tab:green",
    "gain": "tab:red",
}


def short(dataset: str) -> str:
    """The data set's title up to its first parenthesis."""
    return DATASETS[dataset].title.split(" (")[0]


def make_figures(store: Store, main: list[RunSpec], folder: Path) -> list[Path]:
    """Every figure the finished runs of ``main`` (the main comparison) allow."""
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for dataset in dict.fromkeys(s.dataset for s in main):
        specs = [s for s in main if s.dataset == dataset]
        for make in (validation_figure, gdns_figure):
            path = make(store, specs, folder / f"{dataset.replace('-', '_')}")
            if path is not None:
                out.append(path)
    return out


def validation_figure(store: Store, specs: list[RunSpec], stem: Path) -> Path | None:
    import matplotlib.pyplot as plt

    found = [(s, store.get(s.key)) for s in specs]
    found = [(s, r) for s, r in found if r is not None]
    if not found:
        return None
    losses = [x for x in LOSSES if any(s.loss == x for s, _ in found)]
    metric = found[0][1]["metric"]
    fig, axes = plt.subplots(2, len(losses), figsize=(5.2 * len(losses), 7), squeeze=False)
    for col, loss in enumerate(losses):
        labelled: set[str] = set()
        for sampler in SAMPLERS:
            for spec, run in found:
                if spec.loss != loss or spec.sampler != sampler:
                    continue
                x = np.arange(1, len(run["history"]) + 1)
                label = None if sampler in labelled else sampler
                labelled.add(sampler)
                style = {
                    "color": COLORS[sampler],
                    "lw": 1.6,
                    "ls": "--" if sampler == "dns" else "-",
                    "alpha": 1.0 if spec.seed == 0 else 0.45,
                }
                axes[0, col].plot(
                    x, per_epoch(run, lambda h: h["metrics"][metric]), label=label, **style
                )
                axes[1, col].plot(
                    x, per_epoch(run, lambda h: h.get("false_negative_rate")), **style
                )
        axes[0, col].set_title(f"{loss} loss")
        axes[1, col].set_xlabel("epoch")
        axes[1, col].set_yscale("log")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
        axes[0, col].legend(fontsize=8)
    axes[0, 0].set_ylabel(f"validation {metric}")
    axes[1, 0].set_ylabel("drawn false-negative rate")
    dataset = found[0][0].dataset
    fig.suptitle(f"{short(dataset)}: per epoch (seed 0 solid, other seeds faint)", fontsize=10)
    fig.tight_layout()
    path = stem.with_name(stem.name + "_validation.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def gdns_run(store: Store, specs: list[RunSpec]) -> dict[str, Any] | None:
    """The gain run the GDNS figure shows: the default loss, lowest seed,
    with memory diagnostics that hold false negatives."""
    runs = [
        store.get(s.key)
        for s in sorted(specs, key=lambda s: (LOSSES.index(s.loss), s.seed))
        if s.sampler == "gain"
    ]
    for run in runs:
        if run is not None and any(
            h.get("memory", {}).get("false", {}).get("count") for h in run["history"]
        ):
            return run
    return None


def gdns_figure(store: Store, specs: list[RunSpec], stem: Path) -> Path | None:
    import matplotlib.pyplot as plt

    run = gdns_run(store, specs)
    if run is None:
        return None
    mem = [h.get("memory") for h in run["history"]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for col, q in enumerate(("h", "g")):
        ax = axes[col]
        for label, color, name in (
            ("true", "tab:blue", "true negatives"),
            ("false", "tab:red", "false negatives"),
        ):
            xs, med, lo, hi = [], [], [], []
            for e, m in enumerate(mem, 1):
                s = (m or {}).get(label, {}).get(q, {"n": 0})
                if s.get("n", 0) == 0:
                    continue
                xs.append(e)
                lo.append(s["quantiles"][1])
                med.append(s["quantiles"][2])
                hi.append(s["quantiles"][3])
            if xs:
                ax.plot(xs, med, color=color, label=name, marker=".")
                ax.fill_between(xs, lo, hi, color=color, alpha=0.2)
        ax.set_title(f"{q.upper()} in memory (median, 25–75 %)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    x = np.arange(1, len(mem) + 1)
    ax.plot(
        x, [(m or {}).get("auc_h") or np.nan for m in mem], label="H (high → false)", marker="."
    )
    ax.plot(x, [(m or {}).get("auc_g") or np.nan for m in mem], label="G (low → false)", marker=".")
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.set_title("AUC separating false from true negatives")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(
        f"{short(run['dataset'])}: gain sampler's memory, {run['loss']} loss, seed {run['seed']}"
    )
    fig.tight_layout()
    path = stem.with_name(stem.name + "_gdns_h_g.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["make_figures", "validation_figure", "gdns_figure", "gdns_run"]
