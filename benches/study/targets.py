"""The issues' targets, each stated as met, missed (by how much) or not
measured yet, from the run records alone.

The anchors are published numbers on the same splits
(``design/algorithms.md`` §6): NCF's GMF and NeuMF (He et al., WWW 2017),
Rendle et al.'s tuned dot-product MF (RecSys 2020) on ML-1M; MF-BPR, ENMF,
EASE, LightGCN and SimpleX's MF-CCL on Gowalla (LightGCN paper, BARS).
"""

from __future__ import annotations

from typing import Any

from gnno.recipes import DEFAULT_LOSS, DEFAULT_SAMPLER

from .plan import RunSpec, baseline
from .registry import DATASETS, LOSSES
from .store import Store
from .summarize import RECOVERY_METRIC, fmt, outside_spread, paired, stat

#: (data set, metric, target, minutes allowed per run) of the training issue.
ACCURACY_TARGETS = (
    ("ml1m", "hr@10", 0.73, 30),
    ("ml1m", "ndcg@10", 0.45, 30),
    ("gowalla", "recall@20", 0.165, 60),
)
#: Published anchors: (data set, model, metric → value).
ANCHORS = (
    ("ml1m", "GMF, factor 32 (NCF reproduction)", {"hr@10": 0.708, "ndcg@10": 0.429}),
    ("ml1m", "NeuMF with pre-training (NCF paper)", {"hr@10": 0.730, "ndcg@10": 0.447}),
    ("ml1m", "tuned dot-product MF (Rendle et al. 2020)", {"hr@10": 0.73, "ndcg@10": 0.45}),
    ("gowalla", "MF-BPR (NGCF paper; tuned run)", {"recall@20": 0.1491, "ndcg@20": 0.1235}),
    ("gowalla", "MF-BPR, 300 negatives (BARS)", {"recall@20": 0.1627, "ndcg@20": 0.1378}),
    ("gowalla", "LightGCN, 3 layers", {"recall@20": 0.1830, "ndcg@20": 0.1554}),
    ("gowalla", "MF + cosine contrastive loss, 800 negatives", {"recall@20": 0.1837}),
)
#: What the anchors above a missed target do that the recipe does not
#: (``design/algorithms.md`` §6), per data set.
ANCHOR_RECIPES = {
    "ml1m": (
        "The anchor at about .73 / .45 is Rendle et al.'s dot-product MF, tuned with "
        "dimensions up to 192, a pointwise logistic loss, plain SGD and 256 epochs; "
        "GMF here is held to at most 128 dimensions. The test item is each user's latest "
        "rating, but the training file carries no times, so the validation item is a random "
        "one: the test items are less popular than the training items and the validation "
        "items are not (`docs/VALIDATION_CHECK.md`)."
    ),
    "gowalla": (
        "The MF anchors above the target draw many more negatives per positive "
        "(BARS's MF-BPR 300, MF-CCL 800, with a cosine contrastive loss); LightGCN "
        "adds graph propagation. The test items are more popular than the training "
        "items and a validation item drawn from them is not (`docs/VALIDATION_CHECK.md`), "
        "so a configuration that leads on validation can trail on test."
    ),
}
#: The gain issue's data sets, of which the gain sampler must beat DNS on two.
GAIN_DATASETS = ("ml1m", "gowalla", "ml1m-fn30")
#: The gain issue's false-negative target: at most this multiple of DNS's rate.
FN_TARGET = 0.8
DEFAULT = (DEFAULT_SAMPLER, DEFAULT_LOSS)


def _runs(store: Store, specs: list[RunSpec], dataset: str, sampler: str, loss: str) -> list:
    """The finished main-comparison runs of (dataset, sampler, loss)."""
    return [
        store.get(s.key)
        for s in specs
        if (s.dataset, s.sampler, s.loss) == (dataset, sampler, loss)
        and not s.hypothesis
        and s.key in store
    ]


def target_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    lines = [
        "## Targets",
        "",
        f"The default of `gnno train` is the {DEFAULT_SAMPLER} sampler with the recipe's "
        f"{DEFAULT_LOSS} loss (`gnno.recipes`); the best of every sampler at the recipe is "
        "shown beside it. Minutes are wall-clock per run on "
        "this machine (one torch and one gnno thread per run, other runs sharing the two "
        "cores).",
        "",
        f"| data set | metric | target | default ({DEFAULT_SAMPLER}) | best sampler at the recipe | "
        "min/run (default) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, metric, target, minutes in ACCURACY_TARGETS:
        default = _runs(store, specs, dataset, *DEFAULT)
        best_name, best_value = None, None
        for s in {(s.sampler, s.loss) for s in specs if s.dataset == dataset}:
            mean, _, n = stat(r["test"].get(metric) for r in _runs(store, specs, dataset, *s))
            if n and (best_value is None or mean > best_value):
                best_name, best_value = f"{s[0]} ({s[1]})", mean
        if not default:
            best = "–" if best_name is None else f"{best_name}: {best_value:.4f}"
            lines.append(
                f"| {dataset} | {metric} | ≥ {target} | not run yet | {best} | – | "
                "not measured yet |"
            )
            continue
        mean, sd, n = stat(r["test"][metric] for r in default)
        wall, _, _ = stat(r["compute"]["wall_seconds"] / 60 for r in default)
        met = mean >= target and wall <= minutes
        if mean >= target:
            verdict = "met" if wall <= minutes else f"reached, but {wall:.0f} > {minutes} min"
        else:
            verdict = f"missed by {target - mean:.4f}"
        best = "–" if best_name is None else f"{best_name}: {best_value:.4f}"
        lines.append(
            f"| {dataset} | {metric} | ≥ {target} | {mean:.4f} ({n} seed{'s' * (n != 1)}) | "
            f"{best} | {wall:.0f} | {'**met**' if met else verdict} |"
        )
    lines += ["", *missed_lines(store, specs)]
    lines += ["", *default_sampler_lines(store, specs)]
    lines += ["", "Anchors (published, same splits and protocols):", ""]
    lines += ["| data set | model | numbers |", "|---|---|---|"]
    for dataset, model, numbers in ANCHORS:
        text = ", ".join(f"{k} {v}" for k, v in numbers.items())
        lines.append(f"| {dataset} | {model} | {text} |")
    lines += ["", *gain_target_lines(store, specs), ""]
    return lines


def missed_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """Why each missed accuracy target is missed, from the records: whether
    the default's runs converged, the best test value of every finished run
    on the data set, and what the anchors do differently."""
    lines = []
    for dataset in dict.fromkeys(t[0] for t in ACCURACY_TARGETS):
        default = _runs(store, specs, dataset, *DEFAULT)
        missed = [
            (metric, target)
            for d, metric, target, _ in ACCURACY_TARGETS
            if d == dataset and default and stat(r["test"][metric] for r in default)[0] < target
        ]
        if not missed:
            continue
        caps = "/".join(str(c) for c in sorted({r["train"]["epochs"] for r in default}))
        stopped = sum(bool(r.get("stopped_early")) for r in default)
        best_epochs = ", ".join(str(r["best_epoch"] + 1) for r in default)
        done = [store.get(s.key) for s in specs if s.dataset == dataset and s.key in store]
        train = default[0]["train"]
        by_val = max(done, key=lambda r: r["validation"][r["metric"]])
        best = []
        for metric, target in missed:
            top = max(done, key=lambda r: r["test"][metric])
            best.append(
                f"{metric} {top['test'][metric]:.4f} against {target} (`{top['label']}`"
                f"{', a hypothesis' if top.get('hypothesis') else ''})"
            )
        tests = ", ".join(f"{m} {by_val['test'][m]:.4f}" for m, _ in missed)
        lines.append(
            f"* {dataset}: the default's runs converged ({stopped} of {len(default)} stopped "
            f"early on validation; best epochs {best_epochs} of a cap of {caps}; validation "
            f"curves in the data set's figure below). No finished run on this data set "
            f"({len(done)}: every sampler, loss and hypothesis run so far) reaches a target: "
            f"the best test values are {'; '.join(best)}, and the run best on validation "
            f"(`{by_val['label']}`) has {tests}. {ANCHOR_RECIPES.get(dataset, '')} The "
            f"recipe: {train['dim']} dimensions, {train['negatives']} negatives per positive "
            f"in a {DEFAULT_LOSS} loss, Adam at lr {train['lr']:g}."
        )
    if not lines:
        return []
    return [
        "Why the missed targets are missed (the recipe search, below, lists every other "
        "configuration tried):",
        "",
        *lines,
    ]


def _train_command(dataset: str) -> str:
    """The ``gnno train`` command that trains ``dataset``'s default run."""
    d = DATASETS[dataset]
    if d.path is None:
        command = "gnno train"
    else:
        command = f"gnno train --data ../shared/datasets/{d.path} --format {d.format}"
    if d.false_negative_fraction:
        command += f" --false-negatives {d.false_negative_fraction:g}"
    if d.validation_users:
        command += f" --validation-users {d.validation_users}"
    return command


def expected_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """What ``gnno train`` at its defaults reaches per data set (the
    README's "expected" section), from the default's study runs."""
    rows = []
    for dataset in dict.fromkeys(s.dataset for s in specs):
        runs = _runs(store, specs, dataset, *DEFAULT)
        if not runs:
            continue
        metrics = []
        for label, key in DATASETS[dataset].metrics[:2]:
            mean, sd, n = stat(r["test"].get(key) for r in runs)
            metrics.append(f"{label} {fmt(mean, sd, n)}")
        epochs, _, _ = stat(r["best_epoch"] + 1 for r in runs)
        wall, _, _ = stat(r["compute"]["wall_seconds"] / 60 for r in runs)
        rows.append(
            f"| `{_train_command(dataset)}` | {', '.join(metrics)} | {len(runs)} "
            f"| {epochs:.0f} | {wall:.0f} |"
        )
    if not rows:
        return []
    return [
        f"What `gnno train` reaches at its defaults ({DEFAULT_SAMPLER} negatives, the "
        f"{DEFAULT_LOSS} recipe), measured by the study (`docs/RESULTS.md`; this table is "
        "written by `python benches/study --report-only`): test metrics at the best "
        "validation epoch, mean ± standard deviation over seeds, and wall-clock minutes "
        "per run on two CPU cores shared with other runs.",
        "",
        "| command | test | seeds | best epoch | minutes |",
        "|---|---|---:|---:|---:|",
        *rows,
    ]


def _ranking(store: Store, specs: list[RunSpec], dataset: str) -> list[tuple]:
    """``(mean validation, sampler, seeds, mean test headline, validation
    metric)`` of every sampler run at the default loss, best first."""
    found = []
    for sampler in dict.fromkeys(s.sampler for s in specs if s.dataset == dataset):
        runs = _runs(store, specs, dataset, sampler, DEFAULT_LOSS)
        val, _, n = stat(r["validation"].get(r["metric"]) for r in runs)
        if n:
            test, _, _ = stat(r["test"].get(DATASETS[dataset].headline) for r in runs)
            found.append((val, sampler, n, test, runs[0]["metric"]))
    return sorted(found, reverse=True)


def _validation_lead(store: Store, specs: list[RunSpec], dataset: str, sampler: str) -> list:
    """``sampler``'s validation metric minus the default sampler's, per seed
    both have."""
    mine = {r["seed"]: r for r in _runs(store, specs, dataset, sampler, DEFAULT_LOSS)}
    base = {r["seed"]: r for r in _runs(store, specs, dataset, DEFAULT_SAMPLER, DEFAULT_LOSS)}
    return [
        mine[k]["validation"][mine[k]["metric"]] - base[k]["validation"][base[k]["metric"]]
        for k in sorted(mine.keys() & base.keys())
    ]


def _lead_text(diffs: list[float]) -> str:
    if not diffs:
        return "no seed of both yet"
    mean, sd, n = stat(diffs)
    if n == 1:
        return f"lead {mean:+.4f} on one seed (no spread yet)"
    spread = "outside" if outside_spread(diffs) else "within"
    return f"lead {fmt(mean, sd, n, sign=True)} over {n} paired seeds ({spread} the spread)"


def challenger(store: Store, specs: list[RunSpec]) -> tuple[str | None, dict[str, list[str]]]:
    """The rule that keeps or replaces ``DEFAULT_SAMPLER``, on validation
    only, paired by seed against the default at the default loss: a sampler
    replaces it if it leads it on more than half of the data sets where both
    have run, trails it outside the paired seed spread on none, and leads it
    outside the spread on at least one (no worse anywhere beyond the noise,
    better somewhere beyond it). Among several, the one with the most clear
    leads, then the larger mean lead. Returns that sampler (``None``: the
    default stays) and, per sampler, the data sets it leads clearly."""
    samplers = [s for s in dict.fromkeys(s.sampler for s in specs) if s != DEFAULT_SAMPLER]
    datasets = list(dict.fromkeys(s.dataset for s in specs))
    clear: dict[str, list[str]] = {}
    qualified = []
    for sampler in samplers:
        leads = [(d, x) for d in datasets if (x := _validation_lead(store, specs, d, sampler))]
        ahead = [d for d, diffs in leads if stat(diffs)[0] > 0]
        clear[sampler] = [d for d, x in leads if outside_spread(x) and x[0] > 0]
        behind = [d for d, x in leads if outside_spread(x) and x[0] < 0]
        if clear[sampler] and not behind and 2 * len(ahead) > len(leads):
            mean_lead = stat(stat(x)[0] for _, x in leads)[0]
            qualified.append((len(clear[sampler]), mean_lead, sampler))
    clear = {s: d for s, d in clear.items() if d}
    return (max(qualified)[2] if qualified else None), clear


def default_sampler_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """Which sampler measured best on validation (the only split a default
    may be chosen on) per data set, at the recipe's default loss; test
    metrics beside it for information; and the rule's verdict on the
    default."""
    rows = []
    for dataset in dict.fromkeys(s.dataset for s in specs):
        found = _ranking(store, specs, dataset)
        if not found:
            continue
        best = found[0][1]
        cells = ", ".join(
            f"{'**' if s == best else ''}{s} {v:.4f}{'**' if s == best else ''} ({n})"
            for v, s, n, _, _ in found
        )
        tests = ", ".join(f"{s} {t:.4f}" for _, s, _, t, _ in found)
        if best == DEFAULT_SAMPLER:
            verdict = "the default"
        else:
            lead = _lead_text(_validation_lead(store, specs, dataset, best))
            verdict = f"not the default ({DEFAULT_SAMPLER}); {lead}"
        test_metric = DATASETS[dataset].headline
        rows.append(
            f"| {dataset} | {found[0][4]} | {cells} | {test_metric} | {tests} | {best}: {verdict} |"
        )
    if not rows:
        return []
    winner, clear = challenger(store, specs)
    leads = "; ".join(f"{s} on {', '.join(d)}" for s, d in clear.items()) or "none"
    if winner is None:
        rule = f"no sampler qualifies, so {DEFAULT_SAMPLER} stays the default"
    else:
        rule = f"{winner} qualifies: it should replace {DEFAULT_SAMPLER} as the default"
    return [
        f"Samplers at the {DEFAULT_LOSS} recipe, ranked by mean best validation metric "
        "(seeds in brackets); a default is chosen on validation only, the test metric is "
        "shown for information:",
        "",
        "| data set | validation metric | validation, best first | test metric | test, same "
        "order | best on validation (lead over the default, paired by seed) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "The default changes, on validation only and paired by seed, for a sampler that "
        "leads it on more than half of the data sets where both have run, trails it "
        "outside the paired seed spread on none and leads it outside the spread on at "
        "least one (`challenger` in `benches/study/targets.py`). Leads outside the "
        f"spread: {leads}; {rule}.",
    ]


def against_dns(
    store: Store, specs: list[RunSpec], dataset: str, sampler: str, loss: str
) -> list[tuple]:
    """``sampler``'s main runs on ``dataset`` with ``loss`` and DNS's, paired
    by seed (records, ``None`` where a run is missing)."""
    return [
        (store.get(a.key), store.get(b.key))
        for a in specs
        for b in specs
        if (a.dataset, a.sampler, a.loss) == (dataset, sampler, loss)
        and (b.dataset, b.sampler, b.loss, b.seed) == (dataset, "dns", loss, a.seed)
        and not (a.hypothesis or b.hypothesis)
    ]


def gain_against_dns(
    store: Store, specs: list[RunSpec], dataset: str, loss: str
) -> tuple[dict[str, Any], bool]:
    """The gain sampler's main runs against DNS's on ``dataset`` with
    ``loss``, paired by seed (``summarize.paired``), and whether they meet
    the gain issue's accuracy target there: at least +1% relative test
    headline metric, outside the paired seed spread."""
    p = paired(against_dns(store, specs, dataset, "gain", loss), DATASETS[dataset].headline)
    rel, _, _ = stat(p["relative"])
    return p, bool(p["relative"]) and rel >= 0.01 and outside_spread(p["relative"])


def gain_target_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """The gain issue's targets against DNS at the recipe's default loss."""
    beats = 0
    rows = []
    for dataset in GAIN_DATASETS:
        metric = DATASETS[dataset].headline
        p, ok = gain_against_dns(store, specs, dataset, DEFAULT_LOSS)
        if not p["metric"]:
            rows.append(f"| {dataset} | {metric} | – | – | not measured yet |")
            continue
        rel, _, n = stat(p["relative"])
        fn, _, _ = stat(p["fn_ratio"])
        beats += ok
        rows.append(
            f"| {dataset} | {metric} | {rel:+.2%} ({n} pair{'s' * (n != 1)}) | "
            f"{'–' if not p['fn_ratio'] else f'{fn:.2f}x'} | "
            f"{'beats DNS' if ok else 'does not beat DNS by 1% outside the spread'} |"
        )
    return [
        "Gain sampler against DNS (the gain issue's targets: at least +1% relative test "
        "NDCG outside the paired seed spread on two of the three data sets, a "
        f"false-negative rate at most {FN_TARGET:g}x DNS's; the cost per drawn pair, at most 2x "
        "DNS's, is measured by `benches/performance.py`, in `docs/PERFORMANCE.md`, "
        '"Draws"):',
        "",
        "| data set | metric | gain − DNS, relative | fn-rate ratio | verdict |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Data sets where the gain sampler beats DNS as required: {beats} of "
        f"{len(GAIN_DATASETS)} (the target needs 2).",
        *other_loss_lines(store, specs),
        *oracle_lines(store, specs),
        *separation_lines(store, specs),
    ]


def other_loss_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """The same test (gain against DNS on the gain issue's data sets, +1%
    relative outside the paired spread) with each of the study's losses but
    the recipe's: where the gain sampler clears it and where not. The
    verdict above stays the recipe's."""
    met: list[str] = []
    rest: list[str] = []
    for loss in (x for x in LOSSES if x != DEFAULT_LOSS):
        for dataset in GAIN_DATASETS:
            p, ok = gain_against_dns(store, specs, dataset, loss)
            if not p["relative"]:
                continue
            rel, sd, n = stat(p["relative"])
            fn, _, _ = stat(p["fn_ratio"])
            text = (
                f"{dataset} with {loss} {fmt(100 * rel, 100 * sd, n, 2, sign=True)}% "
                f"({n} pair{'s' * (n != 1)}"
                f"{f', fn-rate ratio {fn:.2f}x' if p['fn_ratio'] else ''})"
            )
            (met if ok else rest).append(text)
    if not met and not rest:
        return []
    return [
        "",
        f"The same test at the study's other losses (the recipe's is {DEFAULT_LOSS}), gain − "
        f"DNS, relative test metric: cleared on {'; '.join(met) or 'none'}; not on "
        f"{'; '.join(rest) or 'any other'}.",
    ]


def separation_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """How well ``G`` and ``H`` tell false from true negatives in the gain
    sampler's memory at its last epoch (the run each data set's GDNS table
    shows), and what follows where ``G`` is at chance and ``H`` is not."""
    from .figures import gdns_run

    cells, chance = [], []
    for dataset in dict.fromkeys(s.dataset for s in specs):
        run = gdns_run(store, [s for s in specs if s.dataset == dataset and not s.hypothesis])
        if run is None:
            continue
        last = [h["memory"] for h in run["history"] if h.get("memory")][-1]
        if last.get("auc_g") is None or last.get("auc_h") is None:
            continue
        if abs(last["auc_g"] - 0.5) < 0.05 and last["auc_h"] > 0.55:
            chance.append(dataset)
        cells.append(f"{dataset} {last['auc_g']:.3f} and {last['auc_h']:.3f}")
    if not cells:
        return []
    text = (
        "How well the gain `G` and the expectation `H` tell false from true negatives in "
        "the gain sampler's memory at its last epoch (AUC, 0.5 = chance; `G` then `H`): "
        + "; ".join(cells)
        + "."
    )
    if chance:
        text += (
            f" On {', '.join(chance)} `G` is at chance (within 0.05 of 0.5) while `H`, the "
            "hardness, is not (above 0.55): the false negatives are among the hardest "
            "candidates and `G` cannot pick them out, so a variant that draws fewer of them "
            "there does so by drawing easier negatives."
        )
    return ["", text]


def oracle_lines(store: Store, specs: list[RunSpec]) -> list[str]:
    """What keeping false negatives out of the draws wins at most: the
    oracle runs (``exclude_known``) against DNS, paired by seed."""
    cells = []
    for dataset in dict.fromkeys(s.dataset for s in specs if s.exclude_known):
        oracle = [s for s in specs if s.exclude_known and s.dataset == dataset]
        pairs = [(store.get(s.key), store.get(baseline(s).key)) for s in oracle]
        p = paired(pairs, DATASETS[dataset].headline)
        if not p["metric"]:
            continue
        rel, _, n = stat(p["relative"])
        fn, _, _ = stat(p["fn_ratio"])
        every = " in every pair" if outside_spread(p["relative"]) else ""
        cell = (
            f"{dataset} {rel:+.2%}{every} ({n} pair{'s' * (n != 1)}, {fn:.2f}x DNS's "
            "false-negative rate"
        )
        if p["recovery"]:
            rec, _, m = stat(p["recovery"])
            every = ", every pair" if outside_spread(p["recovery"]) else ""
            cell += f"; the hidden liked items' {RECOVERY_METRIC} {rec:+.4f}{every}, {m} pairs"
        cell += ")"
        default = paired(
            against_dns(store, specs, dataset, DEFAULT_SAMPLER, DEFAULT_LOSS),
            DATASETS[dataset].headline,
        )
        if default["relative"] and DEFAULT_SAMPLER != "dns":
            rel, _, m = stat(default["relative"])
            every = ", every pair" if outside_spread(default["relative"]) else ""
            cell += f", where the default {DEFAULT_SAMPLER} gets {rel:+.2%} ({m} pairs{every})"
        cells.append(cell)
    if not cells:
        return []
    return [
        "",
        "The most that keeping false negatives out of the draws can win: DNS that never "
        "draws a known false negative (the oracle `oracle-dns`, Hypotheses below), against "
        "DNS, relative test NDCG: " + "; ".join(cells) + ".",
    ]


__all__ = [
    "target_lines",
    "against_dns",
    "expected_lines",
    "ACCURACY_TARGETS",
    "ANCHORS",
    "FN_TARGET",
]
