"""The study pipeline end to end (``python benches/study --quick``): plan,
training, the run store, resuming, the report and the figures, on tiny
synthetic data in a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gnno

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "benches" / "study"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The subprocess imports the gnno this test imports.
    here = str(Path(gnno.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(x for x in (here, env.get("PYTHONPATH")) if x)
    return subprocess.run(
        [sys.executable, str(STUDY), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("study")
    done = _run("--quick", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_quick_writes_runs_report_and_figures_under_out(quick: Path) -> None:
    runs = sorted((quick / "study" / "runs").glob("*.json"))
    assert len(runs) >= 6
    record = json.loads(runs[0].read_text())
    assert runs[0].stem == record["key"]
    assert record["epochs_run"] == 2 and len(record["history"]) == 2
    assert record["train"]["epochs"] == 2
    assert record["compute"]["wall_seconds"] > 0
    assert "false_negative_rate" in record["history"][0]
    planted = [json.loads(p.read_text()) for p in runs]
    assert all(0.0 <= r["recovery"]["recall@20"] <= 1.0 for r in planted)
    popularity = record["popularity"]
    assert popularity["k"] == 20 and popularity["users"] > 0
    assert abs(popularity["delta"]) < 10 and popularity["delta_se"] >= 0
    gains = [json.loads(p.read_text()) for p in runs if ".gain." in p.name]
    memory = gains[0]["history"][-1]["memory"]
    assert memory["false"]["count"] > 0 and memory["true"]["count"] > 0
    assert 0.0 <= memory["auc_h"] <= 1.0
    report = (quick / "RESULTS.md").read_text()
    for part in (
        "## Compute",
        "Gain − DNS, paired by seed",
        "## Hypotheses",
        "Popularity of the recommendations",
    ):
        assert part in report
    assert "fresh-10" in report and "not run yet" not in report.split("## Hypotheses")[1]
    figures = sorted(p.name for p in (quick / "figures").glob("*.png"))
    assert figures == ["tiny_gdns_h_g.png", "tiny_validation.png"]
    # Nothing outside --out: the repository's docs are untouched.
    assert not (ROOT / "docs" / "study" / "runs" / runs[0].name).exists()


def test_resume_trains_nothing_and_report_only_reproduces_the_report(quick: Path) -> None:
    before = (quick / "RESULTS.md").read_text()
    again = _run("--quick", "--out", str(quick))
    assert again.returncode == 0, again.stdout + again.stderr
    assert ", 0 to train" in again.stdout
    only = _run("--quick", "--report-only", "--out", str(quick))
    assert only.returncode == 0, only.stdout + only.stderr
    assert (quick / "RESULTS.md").read_text() == before
    # A narrowed run still reports on the whole plan.
    narrowed = _run("--quick", "--report-only", "--samplers", "uniform", "--out", str(quick))
    assert narrowed.returncode == 0, narrowed.stdout + narrowed.stderr
    assert (quick / "RESULTS.md").read_text() == before


def test_a_changed_setting_is_a_new_run(quick: Path) -> None:
    listed = _run("--quick", "--list", "--epochs-cap", "1", "--out", str(quick))
    assert listed.returncode == 0, listed.stderr
    lines = [x for x in listed.stdout.splitlines() if "tier" in x]
    assert lines and not any(x.startswith("done") for x in lines)


def test_quick_recipe_search(tmp_path: Path) -> None:
    done = _run("recipe", "--quick", "--out", str(tmp_path), "--max-runs", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "study" / "recipe").glob("*.json")]
    assert len(records) == 3
    assert {r["sampler"] for r in records} == {"uniform"}
    # Three different configurations: two losses, then another L2.
    assert len({json.dumps([r["loss"], r["train"]], sort_keys=True) for r in records}) == 3
    assert len({r["loss"] for r in records}) == 2
    # The study takes the search's run of its own plan (uniform, the
    # default loss, seed 0) instead of training it again.
    from gnno.recipes import recipe

    l2 = recipe("csv", "softmax")["l2"]
    shared = [r for r in records if r["loss"] == "softmax" and r["train"]["l2"] == l2]
    assert len(shared) == 1, [(r["loss"], r["train"]["l2"]) for r in records]
    study = _run("--quick", "--out", str(tmp_path), "--max-runs", "0", "--no-hypotheses")
    assert study.returncode == 0, study.stdout + study.stderr
    assert f"{shared[0]['key']}: taken from the recipe search's store" in study.stdout
    adopted = json.loads((tmp_path / "study" / "runs" / f"{shared[0]['key']}.json").read_text())
    assert {k: v for k, v in adopted.items() if k != "tier"} == {
        k: v for k, v in shared[0].items() if k != "tier"
    }


def test_max_runs_counts_the_runs_this_process_trains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run another (live) process holds is skipped, and does not use up
    ``--max-runs``: this process still trains one."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import Claims

    listed = _run("--quick", "--out", str(tmp_path), "--list", "--no-hypotheses")
    first = next(line.split()[-1] for line in listed.stdout.splitlines() if "tier" in line)
    claims = Claims(tmp_path / "study" / "runs")
    assert claims.take(first)  # held by this (live) test process
    try:
        done = _run("--quick", "--out", str(tmp_path), "--max-runs", "1", "--no-hypotheses")
    finally:
        claims.release(first)
    assert done.returncode == 0, done.stdout + done.stderr
    trained = [p.stem for p in (tmp_path / "study" / "runs").glob("*.json")]
    assert len(trained) == 1 and first not in trained, done.stdout


def test_runs_name_the_commit_their_process_started_at(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process keeps the code it loaded: a commit made while it trains
    (HEAD moves) does not name its later runs."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study import runner

    heads = iter(["aaaaaaa", "bbbbbbb"])
    monkeypatch.setattr(runner, "git_commit", lambda mark_changes=True: next(heads))
    runner.code_commit.cache_clear()
    try:
        runner.code_commit()  # train_run asks as the first run starts
        assert runner.compute_info("cpu", 1.0, 0.0)["commit"] == "aaaaaaa"
        assert runner.compute_info("cpu", 1.0, 0.0)["commit"] == "aaaaaaa"
    finally:
        runner.code_commit.cache_clear()


def test_recipe_search_order_per_data_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """ML-1M's search compares the losses, then L2; Gowalla's starts from
    softmax and tries more negatives before L2. Each configuration is tried
    once, and the search stops where ``evaluate`` says so."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from gnno.recipes import recipe
    from study.recipe import search

    def trials(dataset: str, n: int) -> list[dict]:
        asked: list[dict] = []

        def evaluate(settings: dict) -> dict | None:
            if len(asked) == n:
                return None
            asked.append(settings)
            # Every configuration scores the same: the base stays the first.
            return {"metric": "m", "validation": {"m": 0.5}}

        search(dataset, evaluate)
        return asked

    ml1m = trials("ml1m", 6)
    assert [t["loss"] for t in ml1m[:4]] == ["softmax", "group_softmax", "bpr", "group"]
    l2 = recipe("ncf", "softmax")["l2"]
    assert [t["l2"] for t in ml1m[4:]] == [pytest.approx(l2 / 3), pytest.approx(l2 * 3)]
    gowalla = trials("gowalla", 3)
    base = dict(recipe("lightgcn", "softmax"), loss="softmax")
    assert gowalla[0] == base
    assert gowalla[1] == dict(base, negatives=base["negatives"] * 4)
    assert gowalla[2] == dict(base, l2=pytest.approx(base["l2"] / 3))
    assert len({repr(sorted(t.items())) for t in trials("gowalla", 100)}) == len(
        trials("gowalla", 100)
    )


def test_recipe_confirmation_pairs_the_chosen_configuration_with_the_recipe_by_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.recipe import confirmation, confirmation_line, recipe_settings, spec_for

    mine = recipe_settings("ml1m", "softmax")
    chosen = dict(mine, lr=mine["lr"] / 2)
    cap = mine["epochs"]

    def record(val: float, hr: float) -> dict:
        return {"metric": "ndcg@10", "validation": {"ndcg@10": val}, "test": {"hr@10": hr}}

    runs = {
        spec_for("ml1m", chosen, cap, seed).key: record(0.60 + seed / 100, 0.72)
        for seed in (0, 1, 2)
    }
    runs |= {
        spec_for("ml1m", mine, cap, seed).key: record(0.59 + seed / 200, 0.71) for seed in (0, 1)
    }
    assert confirmation("ml1m", mine, cap, runs.get) is None  # nothing to confirm
    found = confirmation("ml1m", chosen, cap, runs.get)
    assert found is not None and [seed for seed, _, _ in found["pairs"]] == [
        0,
        1,
    ]  # seed 2 unpaired
    line = confirmation_line(found)
    assert "seed 0 +0.0100, seed 1 +0.0150; mean +0.0125 ± 0.0035 (every pair)" in line
    assert "chosen 0.7200, recipe 0.7100" in line
    one = {"pairs": found["pairs"][:1]}
    assert confirmation_line(one).startswith("Not yet confirmed over seeds (1 of 3")


def test_readme_expected_section_is_the_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's table of what ``gnno train`` reaches is written by the
    report from the committed run records: regenerate it (``--report-only``)
    whenever a run lands."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from _sections import section_body
    from study.cli import README_SECTION, config_from, parse_args
    from study.plan import plan
    from study.store import Store
    from study.targets import expected_lines

    config = config_from(parse_args([]))
    lines = expected_lines(Store(ROOT / "docs" / "study" / "runs"), plan(config))
    body = section_body((ROOT / "README.md").read_text(), README_SECTION)
    assert body is not None
    assert body.strip() == "\n".join(lines).strip()


def test_a_main_run_planned_again_by_a_hypothesis_stays_a_main_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gain-default hypothesis and its DNS baseline are the main runs of
    gain and DNS (same settings, same key); planned once, at the earlier
    tier, they still count in the main comparison (targets, rankings)."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import main_runs, plan

    config = config_from(parse_args([]))
    planned = {s.key: s for s in plan(config)}
    main = main_runs(config)
    assert all(not planned[s.key].hypothesis for s in main)
    hyp_only = [s for s in planned.values() if s.hypothesis]
    assert hyp_only and all(s.key not in {m.key for m in main} for s in hyp_only)
    # The synthetic data's main gain run is also the gain-default hypothesis's.
    gain = next(s for s in main if (s.dataset, s.sampler, s.seed) == ("synthetic", "gain", 0))
    assert planned[gain.key].tier <= gain.tier


def test_runs_beyond_the_studys_coverage_come_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted false negatives serve the gain test (gain against DNS);
    the other samplers' other losses there are planned after every run that
    the study's coverage (every sampler and loss on ML-1M, Gowalla and the
    synthetic data) and the gain test need."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import TIERS, plan

    runs = plan(config_from(parse_args([])))
    last = len(TIERS) - 1
    extra = [s for s in runs if s.tier == last]
    assert extra and all(
        s.dataset == "ml1m-fn30" and s.sampler not in ("gain", "dns") and s.loss != "softmax"
        for s in extra
    )
    first_extra = runs.index(extra[0])
    assert all(s.tier == last for s in runs[first_extra:])
    assert any(s.dataset == "gowalla" and s.loss == "group" for s in runs[:first_extra])


def test_the_report_says_when_only_the_last_tier_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import TIERS, plan
    from study.report import _missing_tiers

    runs = plan(config_from(parse_args([])))
    last = len(TIERS) - 1
    done_but_last = {s.key for s in runs if s.tier != last}
    said = _missing_tiers(runs, done_but_last)  # type: ignore[arg-type]
    n = sum(1 for s in runs if s.tier == last)
    assert said.startswith(f"; the {n} missing are all of the last tier")
    assert f"every run of tiers 0–{last - 1} is finished" in said
    one_more = done_but_last - {next(s.key for s in runs if s.tier == 0)}
    assert _missing_tiers(runs, one_more) == ""  # type: ignore[arg-type]
    assert _missing_tiers(runs, {s.key for s in runs}) == ""  # type: ignore[arg-type]


def test_the_committed_stores_hold_only_runs_the_report_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run record left over from a changed recipe or plan would sit in the
    repository unread by the report: every study record is a planned run
    (of ``report_config``, what ``--report-only`` reads) and every recipe
    record a configuration the search visits."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import parse_args, report_config
    from study.plan import plan
    from study.recipe import (
        SEARCH_DATASETS,
        RecipeStore,
        chosen,
        confirmation,
        finder,
        lookup,
        search,
    )
    from study.store import Store

    runs = ROOT / "docs" / "study" / "runs"
    planned = {s.key for s in plan(report_config(parse_args([])))}
    assert sorted(p.stem for p in runs.glob("*.json") if p.stem not in planned) == []
    folder = ROOT / "docs" / "study" / "recipe"
    store = RecipeStore(folder)
    # What the report reads: the search's store, then the study's (the
    # recipe's own runs at the confirmation's seeds).
    find = finder(store, Store(runs))
    visited = set()
    for dataset in SEARCH_DATASETS:
        for cap in {r["train"]["epochs"] for r in store if r["dataset"] == dataset}:
            tried = search(dataset, lookup(find, dataset, cap))
            visited |= {r["key"] for _, _, r in tried}
            found = confirmation(dataset, tried[chosen(tried)][1], cap, find)
            visited |= {r["key"] for _, a, b in (found or {"pairs": []})["pairs"] for r in (a, b)}
    assert sorted(p.stem for p in folder.glob("*.json") if p.stem not in visited) == []


def test_missed_targets_are_explained_from_the_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missed accuracy target gets a line saying whether the default's runs
    converged and the best test value of any finished run; a met one none."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import plan
    from study.store import Store
    from study.targets import DEFAULT, missed_lines

    specs = plan(config_from(parse_args(["--datasets", "ml1m"])))
    default = [s for s in specs if (s.sampler, s.loss) == DEFAULT and not s.hypothesis]
    store = Store(tmp_path)

    def record(spec, hr: float, ndcg: float, val: float) -> dict:
        return {
            "key": spec.key,
            "label": f"{spec.dataset}.{spec.sampler}.{spec.loss}.seed{spec.seed}",
            "metric": "ndcg@10",
            "best_epoch": 20,
            "stopped_early": True,
            "train": {"epochs": 300, "dim": 64, "negatives": 16, "lr": 0.002},
            "test": {"hr@10": hr, "ndcg@10": ndcg},
            "validation": {"ndcg@10": val},
        }

    for i, spec in enumerate(default):
        store.runs[spec.key] = record(spec, 0.70 + i / 100, 0.44, 0.5)
    lines = missed_lines(store, specs)
    assert len(lines) == 3, lines
    assert "3 of 3 stopped early" in lines[2]
    assert f"hr@10 {0.70 + (len(default) - 1) / 100:.4f} against 0.73" in lines[2]
    for spec in default:
        store.runs[spec.key] = record(spec, 0.75, 0.46, 0.5)
    assert missed_lines(store, specs) == []


def test_gain_against_dns_at_the_other_losses_is_stated_per_data_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The gain target's test at each loss but the recipe's: cleared needs
    +1% relative with every pair ahead; the recipe's loss is not listed."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import plan
    from study.registry import DATASETS
    from study.store import Store
    from study.targets import DEFAULT, other_loss_lines

    specs = plan(config_from(parse_args(["--datasets", "ml1m,gowalla"])))
    store = Store(tmp_path)
    assert other_loss_lines(store, specs) == []
    # gain / DNS test metric per seed: gowalla bpr ahead in both pairs by
    # 2% and 4%; ml1m bpr ahead by 3% on average but behind in one pair.
    ratios = {("gowalla", "bpr"): [1.02, 1.04], ("ml1m", "bpr"): [1.05, 0.99, 1.05]}
    for spec in specs:
        ratio = ratios.get((spec.dataset, spec.loss))
        if spec.hypothesis or spec.sampler not in ("gain", "dns") or ratio is None:
            continue
        if spec.seed >= len(ratio):
            continue
        metric = DATASETS[spec.dataset].headline
        value = 0.1 * (ratio[spec.seed] if spec.sampler == "gain" else 1.0)
        store.runs[spec.key] = {
            "key": spec.key,
            "seed": spec.seed,
            "test": {metric: value},
            "history": [],
        }
    (blank, line) = other_loss_lines(store, specs)
    assert blank == "" and f"the recipe's is {DEFAULT[1]}" in line
    cleared, missed = line.split("; not on ")
    assert "cleared on gowalla with bpr +3.00 ± 1.41% (2 pairs)" in cleared
    assert "ml1m with bpr +3.00 ± 3.46% (3 pairs)" in missed and "ml1m" not in cleared


def test_the_default_sampler_is_the_one_the_committed_runs_choose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``gnno.recipes.DEFAULT_SAMPLER`` follows the rule in
    ``study.targets.challenger`` over the committed run records: when a
    landed run makes another sampler clearly best, this fails until the
    default changes."""
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import parse_args, report_config
    from study.plan import plan
    from study.store import Store
    from study.targets import challenger

    specs = plan(report_config(parse_args([])))
    winner, _ = challenger(Store(ROOT / "docs" / "study" / "runs"), specs)
    assert winner is None, f"the runs choose {winner} over {gnno.recipes.DEFAULT_SAMPLER}"


def test_challenger_needs_a_clear_lead_and_no_clear_loss(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import plan
    from study.store import Store
    from study.targets import DEFAULT, challenger

    specs = plan(config_from(parse_args(["--datasets", "ml1m,ml1m-fn30,synthetic"])))
    store = Store(tmp_path)
    other = next(s for s in ("dns", "uniform") if s != DEFAULT[0])

    def fill(sampler: str, dataset: str, lead: list[float]) -> None:
        for spec in specs:
            if (spec.sampler, spec.loss, spec.dataset) == (sampler, DEFAULT[1], dataset) and (
                not spec.hypothesis
            ):
                store.runs[spec.key] = {
                    "key": spec.key,
                    "seed": spec.seed,
                    "metric": "m",
                    "validation": {"m": 0.5 + lead[spec.seed]},
                }

    for dataset in ("ml1m", "ml1m-fn30", "synthetic"):
        fill(DEFAULT[0], dataset, [0.0, 0.0, 0.0])
        fill(other, dataset, [0.01, -0.001, 0.01])  # ahead, within the spread
    assert challenger(store, specs) == (None, {})
    fill(other, "ml1m", [0.01, 0.001, 0.01])  # every seed ahead
    assert challenger(store, specs) == (other, {other: ["ml1m"]})
    fill(other, "synthetic", [-0.01, -0.001, -0.01])  # every seed behind
    # Ahead on two of three data sets, one of them clearly, but clearly
    # behind on the third.
    assert challenger(store, specs) == (None, {other: ["ml1m"]})


def test_hypotheses_reach_ml1m_only_through_their_fn30_screen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import baseline, hypothesis_spec, plan, screen
    from study.registry import DATASETS, HYPOTHESES
    from study.store import Store

    config = config_from(parse_args(["--datasets", "ml1m,ml1m-fn30", "--no-hypotheses"]))
    config.hypotheses = ("fresh-16",)
    hyp = next(h for h in HYPOTHESES if h.name == "fresh-16")
    store = Store(tmp_path)
    metric = DATASETS["ml1m-fn30"].headline

    def on_ml1m() -> int:
        return sum(s.dataset == "ml1m" and s.hypothesis for s in plan(config, store))

    def land(deltas: list[float]) -> None:
        for seed, delta in enumerate(deltas):
            spec = hypothesis_spec(hyp, "ml1m-fn30", seed, config)
            for run, value in ((spec, 0.4 + delta), (baseline(spec), 0.4)):
                store.runs[run.key] = {
                    "key": run.key,
                    "seed": seed,
                    "test": {metric: value},
                    "history": [],
                }

    # Without a store nothing is known, and every hypothesis is planned.
    assert sum(s.dataset == "ml1m" and s.hypothesis for s in plan(config)) == 3
    assert on_ml1m() == 0 and screen(hyp, "ml1m", config, store)[0] == "wait"
    land([-0.01, -0.02])
    assert screen(hyp, "ml1m", config, store) == (
        "wait",
        "waits for its ml1m-fn30 screen (2/3 pairs)",
    )
    land([-0.01, 0.002, -0.02])  # behind on average, within the spread
    assert on_ml1m() == 3
    land([-0.01, -0.002, -0.02])  # behind in every pair
    state, why = screen(hyp, "ml1m", config, store)
    assert (state, on_ml1m()) == ("out", 0) and "Δ -0.0107" in why
    assert screen(hyp, "ml1m-fn30", config, store) == ("run", "")


def test_missing_runs_are_costed_from_the_finished_ones_and_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import hypothesis_spec, plan
    from study.registry import HYPOTHESES
    from study.report import missing_lines, remaining_hours
    from study.store import Store

    config = config_from(
        parse_args(["--datasets", "ml1m-fn30", "--samplers", "dns,gain", "--losses", "softmax"])
    )
    config.hypotheses = ("beta-10",)
    hyp = next(h for h in HYPOTHESES if h.name == "beta-10")
    store = Store(tmp_path)
    planned = plan(config, store)
    assert remaining_hours(planned, store) == (0.0, 0, len(planned))
    # Two finished softmax runs: every missing one costs their median;
    # a BPR run, with no BPR run finished, costs the data set's median.
    for key, wall in (("a", 600.0), ("b", 1800.0)):
        store.runs[key] = {
            "key": key,
            "dataset": "ml1m-fn30",
            "loss": "softmax",
            "compute": {"wall_seconds": wall},
        }
    bpr = [s for s in plan(config_from(parse_args(["--datasets", "ml1m-fn30"]))) if s.loss == "bpr"]
    hours, fallback, unknown = remaining_hours(planned + bpr[:1], store)
    assert (fallback, unknown) == (1, 0)
    assert hours == pytest.approx((len(planned) + 1) * 1200 / 3600)
    text = "\n".join(missing_lines(planned, store, config))
    assert f"about {hours - 1200 / 3600:.1f} training hours" in text
    run = hypothesis_spec(hyp, "ml1m-fn30", 0, config)
    assert f"* `{run.key}` (`beta-10`)" in text
    # A main run is never named after a hypothesis that shares its settings.
    assert "(`dns`)" not in text and "softmax.seed0.110390c803` (" not in text


def test_recommended_popularity_tells_a_popularity_ranker_from_an_unpopular_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    import numpy as np
    import torch

    from gnno.protocols import load
    from study.runner import recommended_popularity

    splits = load(None, seed=0)
    log_pop = torch.tensor(np.log1p(splits.train.item_counts), dtype=torch.float32)
    model = gnno.GMF(splits.n_users, splits.n_items, 2)
    with torch.no_grad():
        model.user_embedding.weight[:] = torch.tensor([1.0, 0.0])
        model.weight[:] = 1.0
        model.item_embedding.weight[:, 0] = log_pop
    up = recommended_popularity(model, splits, k=5, users=50, seed=0)
    with torch.no_grad():
        model.item_embedding.weight[:, 0] = -log_pop
    down = recommended_popularity(model, splits, k=5, users=50, seed=0)
    assert up is not None and down is not None
    assert up["users"] == down["users"] == 50
    assert up["delta"] > 0 > down["delta"]
    assert up["top_log_popularity"] > down["top_log_popularity"]


def test_the_oracle_keeps_known_false_negatives_but_not_held_out_items_out_of_its_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.data import known_false_negatives
    from study.data import load as load_data
    from study.plan import baseline, hypothesis_spec
    from study.registry import HYPOTHESES

    config = config_from(parse_args(["--datasets", "synthetic"]))
    oracle = next(h for h in HYPOTHESES if h.name == "oracle-dns")
    spec = hypothesis_spec(oracle, "synthetic", 0, config)
    plain = baseline(spec)
    assert (spec.sampler, spec.exclude_known, spec.options) == ("dns", True, plain.options)
    assert spec.key != plain.key and not plain.exclude_known
    splits = load_data("synthetic", seed=0).splits
    known = known_false_negatives(splits)
    users, items = known.to_pairs()
    assert len(users) > 0
    assert splits.ground_truth.contains(users, items).all()
    assert not splits.valid.contains(users, items).any()
    assert not splits.test_set.contains(users, items).any()
    assert not splits.fit.contains(users, items).any()


def test_separation_lines_say_where_the_gain_is_at_chance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import config_from, parse_args
    from study.plan import plan
    from study.store import Store
    from study.targets import separation_lines

    specs = plan(config_from(parse_args(["--datasets", "ml1m,synthetic", "--no-hypotheses"])))
    store = Store(tmp_path)
    assert separation_lines(store, specs) == []
    for dataset, (g, h) in {"ml1m": (0.51, 0.7), "synthetic": (0.62, 0.79)}.items():
        spec = next(
            s
            for s in specs
            if (s.dataset, s.sampler, s.loss, s.seed) == (dataset, "gain", "softmax", 0)
        )
        memory = {"false": {"count": 5}, "true": {"count": 9}, "auc_g": g, "auc_h": h}
        store.runs[spec.key] = {"key": spec.key, "history": [{"memory": memory}]}
    text = separation_lines(store, specs)[-1]
    assert "ml1m 0.510 and 0.700; synthetic 0.620 and 0.790" in text
    assert "On ml1m `G` is at chance" in text


def test_claims_keep_two_processes_off_the_same_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benches"))
    from study.cli import Claims

    mine, theirs = Claims(tmp_path / "runs"), Claims(tmp_path / "runs")
    assert mine.folder == theirs.folder and mine.folder != Claims(tmp_path / "other").folder
    assert mine.take("a") and not theirs.take("a")  # held by a live process (this one)
    mine.release("a")
    assert theirs.take("a")
    theirs.release("a")
    # A claim whose process is gone is taken over.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (mine.folder / "b").write_text(dead.stdout.strip())
    assert theirs.take("b")
    theirs.release("b")
    # A claim still empty is being written: held for a minute, then stale.
    (mine.folder / "c").write_text("")
    assert not theirs.take("c")
    old = (mine.folder / "c").stat().st_mtime - 120
    os.utime(mine.folder / "c", (old, old))
    assert theirs.take("c")
    theirs.release("c")
