"""The study's command line.

From the repository root (``gnno`` importable, e.g. ``PYTHONPATH=python``)::

    python benches/study                        # the study: trains what is missing, in plan order
    python benches/study --time-budget 600      # ... starting no new run after 10 hours
    python benches/study --datasets ml1m --seeds 3 --samplers dns,gain --losses softmax
    python benches/study --datasets ml1m --hypotheses gain-veto-32,per-user-g --seeds 1
    python benches/study --report-only          # RESULTS.md and figures from the store
    python benches/study --list                 # the plan, with what is done
    python benches/study & python benches/study   # two processes share the plan
    python benches/study --shard 0/2 & python benches/study --shard 1/2   # or split it
    python benches/study --quick --out /tmp/q   # CI: tiny data, 2 epochs, every part
    python benches/study recipe --budget 240    # the recipe search (see recipe.py)

Finished runs are kept in ``<out>/study/runs/<key>.json`` (``--out``
defaults to ``docs``); a run is trained only when its file is missing, so
an interrupted study resumes where it stopped. ``--commit`` commits each
run's file to git as it finishes. Processes started on the same store share
its plan: each run is claimed before it is trained (``Claims``), so no two
processes train the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from .data import ROOT, StudyData, load
from .figures import make_figures
from .plan import PlanConfig, RunSpec, main_runs, plan
from .registry import DATASETS, HYPOTHESES, LOSSES, SAMPLERS, STUDY_DATASETS
from .report import write_report
from .runner import train_run
from .store import Store

QUICK_HYPOTHESES = ("fresh-10", "group-many", "oracle-dns")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benches/study", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="output folder (default: docs; --quick: a temp folder)")
    p.add_argument("--quick", action="store_true", help="tiny synthetic data, 2 epochs (CI)")
    p.add_argument("--report-only", action="store_true", help="only rewrite report and figures")
    p.add_argument("--list", action="store_true", help="print the plan and exit")
    p.add_argument("--datasets", help=f"comma-separated (default: {','.join(STUDY_DATASETS)})")
    p.add_argument("--seeds", type=int, help="seeds per data set (default: the registry's)")
    p.add_argument("--samplers", help=f"comma-separated (default: {','.join(SAMPLERS)})")
    p.add_argument("--losses", help=f"comma-separated (default: {','.join(LOSSES)})")
    p.add_argument("--no-hypotheses", action="store_true", help="plan no hypothesis runs")
    p.add_argument("--hypotheses", help="comma-separated hypothesis names (default: every one)")
    p.add_argument("--epochs-cap", type=int, help="cap every run's epochs (a different run)")
    p.add_argument("--max-runs", type=int, help="train at most this many runs")
    p.add_argument("--time-budget", type=float, help="minutes after which no new run is started")
    p.add_argument(
        "--shard",
        help="K/N: train only every N-th missing run starting at the K-th (0-based), a "
        "fixed split of the plan (processes on one store share it without this too)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch and gnno threads (default 1)")
    p.add_argument("--commit", action="store_true", help="git-commit each run file as it lands")
    return p.parse_args(argv)


def _names(text: str | None, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    if text is None:
        return allowed
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in names if x not in allowed]
    if bad or not names:
        raise SystemExit(f"unknown {what} {bad or text!r}; choose from {', '.join(allowed)}")
    return names


def config_from(args: argparse.Namespace) -> PlanConfig:
    if args.quick:
        datasets = _names(args.datasets, ("tiny",), "data set")
    else:
        datasets = _names(args.datasets, tuple(DATASETS), "data set")
        if args.datasets is None:
            datasets = STUDY_DATASETS
    seeds = {d: args.seeds or DATASETS[d].seeds for d in datasets}
    cap = args.epochs_cap if args.epochs_cap is not None else (2 if args.quick else None)
    if args.no_hypotheses:
        hyps: tuple[str, ...] | None = ()
    elif args.hypotheses is not None:
        hyps = _names(args.hypotheses, tuple(h.name for h in HYPOTHESES), "hypothesis")
    else:
        hyps = QUICK_HYPOTHESES if args.quick else None
    return PlanConfig(
        datasets=datasets,
        seeds=seeds,
        samplers=_names(
            args.samplers, ("uniform", "dns", "gain") if args.quick else SAMPLERS, "sampler"
        ),
        losses=_names(args.losses, ("softmax", "group") if args.quick else LOSSES, "loss"),
        hypotheses=hyps,
        epochs_cap=cap,
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["recipe"]:
        from .recipe import main as recipe_main

        return recipe_main(argv[1:])
    args = parse_args(argv)
    out = args.out or (quick_folder() if args.quick else ROOT / "docs")
    config = config_from(args)
    store = Store(out / "study" / "runs", commit=args.commit)
    planned = plan(config, store)
    if args.list:
        for spec in planned:
            print(f"{'done' if spec.key in store else '    '}  tier {spec.tier}  {spec.key}")
        return 0
    if not args.report_only:
        run_plan(planned, store, args, scratch=out / "study" / "data")
    # The report covers the whole plan whatever narrowed the runs trained.
    config = report_config(args)
    figures = make_figures(store, main_runs(config), out / "figures")
    from .recipe import RecipeStore, report_lines

    recipe = report_lines(RecipeStore(out / "study" / "recipe"), quick=args.quick, study=store)
    path = write_report(store, config, out, figures, recipe)
    print(f"wrote {path} and {len(figures)} figures", flush=True)
    if out.resolve() == (ROOT / "docs").resolve():
        write_readme_section(store, config)
    return 0


#: The README's section that the report writes (between its markers).
README_SECTION = "expected"


def write_readme_section(store: Store, config: PlanConfig) -> None:
    """The README's table of what ``gnno train`` reaches at its defaults."""
    import sys

    sys.path.insert(0, str(ROOT / "benches"))
    from _sections import write_section

    from .targets import expected_lines

    lines = expected_lines(store, plan(config, store))
    if lines:
        write_section(ROOT / "README.md", README_SECTION, "\n".join(lines))


def report_config(args: argparse.Namespace) -> PlanConfig:
    """The plan the report is written from: the whole study (``--quick``'s,
    and at ``--epochs-cap`` where given), not the subset a run was narrowed
    to, so that a narrowed run never leaves a narrowed report behind."""
    unfiltered = dict(
        vars(args),
        datasets=None,
        seeds=None,
        samplers=None,
        losses=None,
        no_hypotheses=False,
        hypotheses=None,
    )
    return config_from(argparse.Namespace(**unfiltered))


def shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard must be K/N, got {text!r}") from None
    if not 0 <= k < n:
        raise SystemExit(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def quick_folder() -> Path:
    """Where ``--quick`` writes without ``--out``: never into ``docs``."""
    import tempfile

    return Path(tempfile.gettempdir()) / "gnno-study-quick"


def adopt(spec: RunSpec, store: Store, searched: Store) -> bool:
    """Copies ``spec``'s run into ``store`` when the recipe search's store
    ``searched`` has it (the same key is the same settings, trained by the
    same runner); True if it did."""
    record = searched.get(spec.key)
    if record is None:
        return False
    store.save(dict(record, tier=spec.tier))
    print(f"{spec.key}: taken from the recipe search's store", flush=True)
    return True


class Claims:
    """Which process trains which run, so that any number of processes can
    work through one plan (``--shard`` splits it up front instead): a run
    is taken by creating ``<key>`` atomically in a folder under the system's
    temporary directory named after the run store, holding the process id.
    A claim whose process is gone (killed mid-run) is taken over."""

    def __init__(self, runs: Path) -> None:
        digest = hashlib.sha1(str(Path(runs).resolve()).encode()).hexdigest()[:12]
        self.folder = Path(tempfile.gettempdir()) / "gnno-study-claims" / digest
        self.folder.mkdir(parents=True, exist_ok=True)

    def take(self, key: str) -> bool:
        path = self.folder / key
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _alive(path):
                    return False
                path.unlink(missing_ok=True)  # its process is gone: take it over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return True
        return False

    def release(self, key: str) -> None:
        (self.folder / key).unlink(missing_ok=True)


def _alive(claim: Path) -> bool:
    """Whether the process that wrote ``claim`` still runs (a claim still
    empty counts as alive for a minute: it is being written)."""
    try:
        text = claim.read_text().strip()
        age = time.time() - claim.stat().st_mtime
    except FileNotFoundError:
        return False
    if not text:
        return age < 60
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def run_plan(planned: list, store: Store, args: argparse.Namespace, scratch: Path) -> None:
    """Trains the planned runs missing from ``store``, in plan order, until
    ``--max-runs`` or ``--time-budget`` says stop."""
    import torch

    import gnno

    torch.set_num_threads(args.threads)
    gnno.set_num_threads(args.threads)
    from .recipe import RecipeStore

    searched = RecipeStore(scratch.parent / "recipe")
    for spec in planned:
        if spec.key not in store:
            adopt(spec, store, searched)
    todo = [s for s in planned if s.key not in store]
    if args.shard:
        k, n = shard(args.shard)
        todo = todo[k::n]
    print(f"{len(planned)} runs planned, {len(todo)} to train", flush=True)
    started = time.monotonic()
    claims = Claims(store.folder)
    loaded: dict[tuple[str, int], StudyData] = {}
    trained = 0  # by this process: runs other processes hold do not count
    for n, spec in enumerate(todo, 1):
        if args.max_runs is not None and trained >= args.max_runs:
            print(f"stopping: --max-runs {args.max_runs} reached", flush=True)
            break
        if args.time_budget is not None and time.monotonic() - started > args.time_budget * 60:
            print(f"stopping: --time-budget {args.time_budget:g} min spent", flush=True)
            break
        if not claims.take(spec.key):
            continue  # another process is training it
        if store.path(spec.key).is_file():  # another process trained it meanwhile
            claims.release(spec.key)
            continue
        key = (spec.dataset, spec.seed)
        if key not in loaded:
            loaded.clear()  # one data set in memory at a time
            loaded[key] = load(spec.dataset, spec.seed, scratch)
        try:
            record = train_run(spec, loaded[key], args.device)
            store.save(record)
        finally:
            claims.release(spec.key)
        trained += 1
        metric = record["metric"]
        print(
            f"[{n}/{len(todo)}] {spec.key}: best epoch {record['best_epoch'] + 1}/"
            f"{record['epochs_run']}, val {metric} {record['validation'][metric]:.4f}, "
            f"test {', '.join(f'{k} {v:.4f}' for k, v in list(record['test'].items())[:4])} "
            f"({record['compute']['wall_seconds']:.0f}s)",
            flush=True,
        )
