"""Measures gnno on this machine and writes ``docs/PERFORMANCE.md``.

    python benches/performance.py                     # everything, ~15 minutes
    python benches/performance.py --memory-scale 0.25 # a smaller memory run

1. ``pytest benches --benchmark-enable --benchmark-json``: the kernels, the
   foundations and the end-to-end epochs (each against its reference in
   the same run);
2. refresh times of the score-based samplers on ML-1M and Gowalla;
3. ``benches/memory.py`` at full and at a quarter scale;
4. the report, every number in it from the runs above.

Needs the shared datasets (``../shared/datasets`` or ``GNNO_DATA``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _machine import cpu_model, datasets_dir, git_commit

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ROOT / "benches"
SCORE_SAMPLERS = ("dns", "srns", "gain")
#: The gain hypotheses' sampler settings (the study's registry), timed beside
#: the default so that each one's cost per pair against DNS is known.
GAIN_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("gain, gain_veto over 32", {"criterion": "gain_veto", "fresh_candidates": 32}),
    ("gain, gain_normalized over 16", {"criterion": "gain_normalized", "fresh_candidates": 16}),
    ("gain, gain_window=5, 3 memory", {"gain_window": 5, "memory_candidates": 3}),
)
#: The gain issue's cost target: a drawn pair at most this many times DNS's.
GAIN_COST_TARGET = 2.0
TARGET = 1.10  # a gain epoch at most this many uniform epochs


# -- the machine --------------------------------------------------------------------


def memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine(env: dict[str, str]) -> dict[str, Any]:
    import torch

    import gnno

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory": memory_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "gnno": gnno.__version__,
        "commit": git_commit(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": int(env["GNNO_BENCH_TORCH_THREADS"]),
        "gnno_threads": int(env.get("GNNO_NUM_THREADS") or gnno.get_num_threads()),
    }


# -- 1. the pytest benchmarks ---------------------------------------------------------


def run_benchmarks(env: dict[str, str], out: Path, only: str | None = None) -> list[dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(BENCHES / only) if only else str(BENCHES),
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-enable",
        f"--benchmark-json={out}",
    ]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    data = json.loads(out.read_text())
    return [b["extra_info"] | {"test": b["name"]} for b in data["benchmarks"]]


# -- 2. refresh times ---------------------------------------------------------------------


def load(data_dir: Path) -> dict[str, Any]:
    from gnno.datasets import load_lightgcn, load_ncf

    return {
        "ML-1M": load_ncf(data_dir / "ml-1m-ncf" / "ml-1m").train,
        "Gowalla": load_lightgcn(data_dir / "gowalla")[0],
    }


def refresh_times(data: dict[str, Any], rounds: int = 5) -> list[dict[str, Any]]:
    """Median seconds of ``refresh(model)`` for a GMF (d=32), after one
    warm-up refresh (the memory is full from then on)."""
    import torch

    import gnno

    rows = []
    for data_name, train in data.items():
        torch.manual_seed(0)
        model = gnno.GMF(train.n_users, train.n_items, 32)
        for name in SCORE_SAMPLERS:
            sampler = gnno.build_sampler(name, train, seed=0)
            times = []
            for epoch in range(rounds + 1):
                sampler.set_epoch(epoch)
                t = time.perf_counter()
                sampler.refresh(model)
                times.append(time.perf_counter() - t)
            rows.append(
                {
                    "dataset": data_name,
                    "sampler": name,
                    "median_s": statistics.median(times[1:]),
                    "users": train.n_users,
                }
            )
    return rows


#: Epochs of training before the draws' snapshots: the first snapshot after
#: ``DRAW_WARM_EPOCHS``, the second one epoch later. The initial model is not
#: the regime a sampler draws in: under it every candidate is about as hard
#: as the next and two snapshots of it are equal, which changes how much of
#: the gain term the draws compute.
DRAW_WARM_EPOCHS = 2


def trained_snapshots(train: Any, seed: int = 0) -> tuple[Any, Any]:
    """Two GMF (d=32) models, ``DRAW_WARM_EPOCHS`` epochs and one more epoch
    into training at the softmax recipe with uniform negatives."""
    import copy

    import torch

    import gnno
    from gnno.recipes import recipe, trainer_options

    torch.manual_seed(seed)
    model = gnno.GMF(train.n_users, train.n_items, 32, sparse=True)
    kwargs = trainer_options(recipe("ncf", "softmax"))
    kwargs.update(progress=False, patience=None, refresh_every=None, seed=seed)
    snapshots = []
    for epochs in (DRAW_WARM_EPOCHS, 1):
        kwargs["epochs"] = epochs
        sampler = gnno.build_sampler("uniform", train, seed=seed + len(snapshots))
        gnno.Trainer(model, train, sampler, loss="softmax", **kwargs).fit()
        snapshots.append(copy.deepcopy(model))
    return snapshots[0], snapshots[1]


def draw_times(data: dict[str, Any], rounds: int = 3) -> list[dict[str, Any]]:
    """Median seconds to draw one negative for every training pair (batches
    of 1024, no training), each sampler after two refreshes from a GMF
    trained for a few epochs (see :func:`trained_snapshots`; the gain
    sampler's gain term needs two snapshots). ``gain, criterion=hardness``
    is the gain sampler without the gain term, to show what that term costs."""
    import gnno

    configs = [(name, name, {}) for name in ("uniform", "popularity", *SCORE_SAMPLERS)]
    configs.append(("gain, criterion=hardness", "gain", {"criterion": "hardness"}))
    configs += [(label, "gain", options) for label, options in GAIN_VARIANTS]
    rows = []
    for data_name, train in data.items():
        before, after = trained_snapshots(train)
        users, items = train.to_pairs()
        order = np.random.default_rng(0).permutation(len(users))
        batches = [
            (users[order[lo : lo + 1024]], items[order[lo : lo + 1024]])
            for lo in range(0, len(order), 1024)
        ]
        samplers = {}
        for label, name, options in configs:
            sampler = gnno.build_sampler(name, train, seed=0, **options)
            for epoch, model in enumerate((before, after)):
                sampler.set_epoch(epoch)
                sampler.refresh(model)
            samplers[label] = sampler
        times: dict[str, list[float]] = {label: [] for label in samplers}
        for _ in range(rounds):  # interleaved, so that drifting load hits all alike
            for label, sampler in samplers.items():
                t = time.perf_counter()
                for u, i in batches:
                    sampler.sample_for_pairs(u, i, 1)
                times[label].append(time.perf_counter() - t)
        for label, ts in times.items():
            rows.append(
                {
                    "dataset": data_name,
                    "sampler": label,
                    "median_s": statistics.median(ts),
                    "pairs": len(users),
                }
            )
    return rows


def draws_section(m: dict[str, Any], draws: list[dict[str, Any]]) -> str:
    """The "Draws" section from :func:`draw_times`'s rows."""
    lines = [
        "## Draws",
        "",
        "One negative for every training pair, in batches of 1024, the sampler alone "
        "(no training), after two refreshes: from a GMF (d=32) trained "
        f"{DRAW_WARM_EPOCHS} epochs at the softmax recipe with uniform negatives, and "
        "from the same model one epoch later. "
        "`gain, criterion=hardness` is the gain sampler without its gain term; the "
        "rows below it are the gain hypotheses' settings (`benches/study/registry.py`). "
        f"The gain issue's target is at most {GAIN_COST_TARGET:g}x DNS per drawn pair. "
        f"Load average {m.get('load_before', '?')} before and {m.get('load_after', '?')} "
        f"after; commit {m.get('commit', '?')}, {m.get('date', '?')}.",
        "",
        "| dataset | sampler | s per epoch | ns per pair | vs uniform | vs DNS |",
        "|---|---|---:|---:|---:|---:|",
    ]
    add = lines.append
    base = {r["dataset"]: r["median_s"] for r in draws if r["sampler"] == "uniform"}
    dns = {r["dataset"]: r["median_s"] for r in draws if r["sampler"] == "dns"}
    for r in draws:
        ratio = r["median_s"] / dns[r["dataset"]] if r["dataset"] in dns else float("nan")
        add(
            f"| {r['dataset']} | {r['sampler']} | {fmt_s(r['median_s'])} "
            f"| {1e9 * r['median_s'] / r['pairs']:.0f} | {r['median_s'] / base[r['dataset']]:.1f}x "
            f"| {ratio:.1f}x |"
        )
    add("")
    gain_rows = [r for r in draws if r["sampler"] == "gain" and r["dataset"] in dns]
    if gain_rows:
        parts = [f"{r['dataset']} {r['median_s'] / dns[r['dataset']]:.1f}x" for r in gain_rows]
        worst = max(r["median_s"] / dns[r["dataset"]] for r in gain_rows)
        verdict = "meets" if worst <= GAIN_COST_TARGET else "misses"
        add(
            f"**The default gain sampler costs {', '.join(parts)} DNS per drawn pair, which "
            f"{verdict} the {GAIN_COST_TARGET:g}x target.**"
        )
        add("")
    add("Regenerate this section alone: `python benches/performance.py --only draws`.")
    return "\n".join(lines)


# -- 3. memory ------------------------------------------------------------------------------


def run_memory(env: dict[str, str], scale: float, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(BENCHES / "memory.py"),
        "--scale",
        str(scale),
        "--compare",
        str(scale / 4),
        "--json",
        str(out),
    ]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return json.loads(out.read_text())


# -- 4. the report ------------------------------------------------------------------------------


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def report(
    m: dict[str, Any],
    benches: list[dict[str, Any]],
    refresh: list[dict[str, Any]],
    draws: list[dict[str, Any]],
    mem: dict[str, Any],
) -> str:
    sys.path.insert(0, str(BENCHES))
    import memory

    epochs = [b for b in benches if "sampler" in b and "dataset" in b]
    kernels = [b for b in benches if b not in epochs and "ratio" in b]
    L: list[str] = []
    add = L.append
    add("# Performance")
    add("")
    add(
        "Generated by `python benches/performance.py`; every number below comes from "
        "that run. Do not edit by hand: rerun it."
    )
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    for key, label in (
        ("date", "date"),
        ("cpu", "CPU"),
        ("cores", "cores"),
        ("usable_cores", "cores usable by this process"),
        ("memory", "memory"),
        ("os", "OS"),
        ("python", "Python"),
        ("numpy", "numpy"),
        ("torch", "torch"),
        ("gnno", "gnno"),
        ("commit", "commit"),
        ("cuda", "GPU"),
        ("torch_threads", "torch intra-op threads (epochs)"),
        ("gnno_threads", "gnno threads"),
        ("load_before", "load average before (1, 5, 15 min)"),
        ("load_after", "load average after"),
    ):
        add(f"| {label} | {m.get(key) if m.get(key) is not None else 'none'} |")
    add("")
    add(
        "Medians throughout. A load average above the core count means other "
        "processes shared the CPU during the run: absolute times are then "
        "inflated, and only ratios measured in the same run (interleaved "
        "round by round for the epochs) compare."
    )
    add("")

    # -- epochs
    add("## End to end: a training epoch with each sampler against uniform sampling")
    add("")
    if epochs:
        e0 = epochs[0]
        add(
            f"GMF (d=32), BPR, batch 1024, Adam, the library's `Trainer`, on `{e0['device']}` "
            f"with {e0['torch_threads']} torch thread(s) and {e0['gnno_threads']} gnno "
            f"thread(s). Each row: {e0['rounds']} epochs of the sampler alternating with "
            "as many uniform epochs, after one warm-up epoch each; `prefetch=2` "
            "(the default) overlaps the sampler's draws with training, `prefetch=0` "
            "draws in the loop. *Sampler busy*: the sampler's own time per epoch "
            "(refreshes and draws, in whichever thread); *wait*: how long training "
            "waited for it."
        )
        add("")
        add(
            "| dataset | setting | sampler | draws | epoch (s) | uniform epoch (s) "
            "| cost vs uniform | sampler busy (s) | wait (s) | uniform busy (s) |"
        )
        add("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
        for b in epochs:
            cost = b["rust_median_s"] / b["reference_median_s"]
            add(
                f"| {b['dataset']} | {b['setting']} | {b['sampler']} "
                f"| {'overlapped' if b['prefetch'] else 'in the loop'} "
                f"| {fmt_s(b['rust_median_s'])} | {fmt_s(b['reference_median_s'])} | {cost:.2f}x "
                f"| {fmt_s(b['sampler_busy_s'])} | {fmt_s(b['sampler_wait_s'])} "
                f"| {fmt_s(b['uniform_busy_s'])} |"
            )
        add("")
        add(target_paragraph(epochs, draws, m))
        add("")

    # -- draws (a section of its own: `--only draws` rewrites it alone)
    from _sections import markers

    begin, end = markers("draws")
    L.extend([begin, draws_section(m, draws), end, ""])

    # -- refresh
    add("## Refresh")
    add("")
    add(
        "`sampler.refresh(model)` for a GMF (d=32): the vectors copied once, then "
        "every user's memory rescored in Rust. Median of 5 after a warm-up refresh "
        "(memory full)."
    )
    add("")
    uniform_epoch = {
        b["dataset"]: b["reference_median_s"]
        for b in epochs
        if b["sampler"] == "gain" and b["prefetch"]
    }
    add("| dataset | sampler | refresh (s) | µs per user | share of a uniform epoch |")
    add("|---|---|---:|---:|---:|")
    names = {"ML-1M": "ml-1m", "Gowalla": "gowalla"}
    for r in refresh:
        ue = uniform_epoch.get(names[r["dataset"]])
        share = f"{r['median_s'] / ue:.1%}" if ue else "-"
        add(
            f"| {r['dataset']} | {r['sampler']} | {fmt_s(r['median_s'])} "
            f"| {1e6 * r['median_s'] / r['users']:.1f} | {share} |"
        )
    add("")

    # -- kernels
    add("## Kernels and foundations against their numpy references")
    add("")
    add("| benchmark | gnno (s) | reference (s) | ratio | throughput |")
    add("|---|---:|---:|---:|---|")
    for b in kernels:
        add(
            f"| {b['name']} | {b['rust_median_s']:.4f} | {b['reference_median_s']:.4f} "
            f"| {b['ratio']:.1f}x | {b['rust_items_per_s']:.3g} {b['unit']}/s |"
        )
    add("")

    # -- memory
    add("## Memory")
    add("")
    add(
        "`benches/memory.py`: a synthetic training set (users uniform, item popularity "
        "∝ rank^-0.8, duplicates dropped), each sampler at its defaults measured in a "
        "fresh process by resident memory (`/proc/self/status`; the Rust core's "
        "allocations are invisible to tracemalloc). *State*: what the sampler holds "
        "after two refreshes from caller-owned vectors (d=32). *Refresh peak extra*: "
        "the most it needs on top during a refresh. *Rest*: state not in the slot, "
        "per-positive or snapshot arrays (the gain sampler's per-user cache of "
        "positive scores, allocator overhead). Built in "
        f"{mem['full']['make_seconds']:.0f} s."
    )
    add("")
    L.extend(memory.table(mem["full"]))
    add("")
    if "small" in mem:
        L.extend(memory.scaling(mem["small"], mem["full"]))
        add("")
        add(growth_sentence(mem["small"], mem["full"]))
        add("")

    add("## Reproduce")
    add("")
    add("```")
    add("python benches/performance.py            # this file")
    add("python -m pytest benches --benchmark-enable   # the benchmarks alone")
    add("python benches/memory.py --compare 0.25  # the memory tables alone")
    add("```")
    add("")
    return "\n".join(L)


def growth_sentence(small: dict[str, Any], full: dict[str, Any]) -> str:
    su, fu = small["sizes"], full["sizes"]
    users = fu["users"] / su["users"]
    grid = users * fu["items"] / su["items"]
    growths = [
        b["state_bytes"] / a["state_bytes"]
        for a, b in zip(small["samplers"], full["samplers"], strict=True)
        if min(a["state_bytes"], b["state_bytes"]) >= 2**20
    ]
    if not growths:
        return ""
    top = max(growths)
    like = "users and interactions" if top < (users + grid) / 2 else "users x items"
    return (
        f"The largest state grew x{top:.2f} while users grew x{users:.1f} and "
        f"users x items x{grid:.1f}: state scales with {like}."
    )


def target_paragraph(
    epochs: list[dict[str, Any]], draws: list[dict[str, Any]], m: dict[str, Any]
) -> str:
    out = []
    labels = {"ml-1m": "ML-1M", "gowalla": "Gowalla"}
    per_pair = {(r["dataset"], r["sampler"]): 1e9 * r["median_s"] / r["pairs"] for r in draws}
    plain = [b for b in epochs if b["setting"] == "plain"]
    for data in dict.fromkeys(b["dataset"] for b in plain):
        rows = {b["prefetch"]: b for b in plain if b["dataset"] == data and b["sampler"] == "gain"}
        if 2 not in rows:
            continue
        g = rows[2]
        cost = g["rust_median_s"] / g["reference_median_s"]
        verdict = "meets" if cost <= TARGET else "misses"
        training = g["reference_median_s"] - g["uniform_wait_s"]
        text = (
            f"**{labels.get(data, data)}: a gain epoch costs {cost:.2f}x a uniform one with "
            f"overlap, which {verdict} the {TARGET:.2f}x target.** The gain sampler works "
            f"{fmt_s(g['sampler_busy_s'])} s per epoch against about {fmt_s(training)} s of "
            f"training in a uniform epoch; training waited {fmt_s(g['sampler_wait_s'])} s for it."
        )
        if 0 in rows:
            s = rows[0]
            text += (
                f" In the loop (`prefetch=0`) the same epoch costs "
                f"{s['rust_median_s'] / s['reference_median_s']:.2f}x."
            )
        key = labels.get(data, data)
        if (key, "gain") in per_pair and (key, "gain, criterion=hardness") in per_pair:
            full, hard = per_pair[key, "gain"], per_pair[key, "gain, criterion=hardness"]
            text += (
                f" Alone, its draws take {full:.0f} ns per pair, {full - hard:.0f} of them "
                "for the gain term (the same sampler ranking by hardness alone: "
                f"{hard:.0f} ns)."
            )
        out.append(text)
    idle = {b["prefetch"]: b for b in epochs if b["setting"] != "plain"}
    if 2 in idle and 0 in idle:
        a, b = idle[2], idle[0]
        out.append(
            f"**When every training step also leaves the CPU idle ({a['setting']}, a "
            "stand-in for a GPU step on a host with free cores), a gain epoch costs "
            f"{a['rust_median_s'] / a['reference_median_s']:.2f}x a uniform one with "
            f"overlap and {b['rust_median_s'] / b['reference_median_s']:.2f}x without** "
            f"(training waited {fmt_s(a['sampler_wait_s'])} s of the sampler's "
            f"{fmt_s(a['sampler_busy_s'])} s, against {fmt_s(b['sampler_wait_s'])} s in "
            "the loop)."
        )
    out.append(
        "The background thread can only hide the sampler's time on a core that "
        "training leaves idle, and only up to the training's own time. With a GPU "
        "the host thread mostly launches kernels and the sampler has the other "
        "cores, so an epoch tends to max(training, sampling). On this CPU torch's "
        f"training step needs a core of its own; with {m['usable_cores']} cores and "
        "the load average shown above there is little idle CPU to overlap into, and "
        "the gain sampler's work per epoch is of the order of the training's, so "
        "most of it is added to the epoch, overlapped or not."
    )
    return "\n\n".join(out)


def write_report(path: Path, text: str) -> None:
    """Writes the report, keeping the sections other scripts own (the GPU
    section of ``benches/gpu.py``)."""
    sys.path.insert(0, str(BENCHES))
    from _sections import keep_sections

    old = path.read_text() if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(keep_sections(old, text, ("gpu", "training")))


def training_section(m: dict[str, Any], benches: list[dict[str, Any]]) -> str:
    """The "sparse against dense training" section from ``bench_training``'s records."""
    rows = [b for b in benches if "sparse vs dense" in b.get("name", "")]
    lines = [
        "## Training: sparse embedding updates against dense Adam",
        "",
        "One GMF epoch (d=64, BPR, one uniform negative per pair, batch 1024) with "
        "`gnno.Trainer` on the default path (`GMF(sparse=True)`: RowAdam (lazy Adam) updates only "
        "the batch's rows, L2 on those rows) against a plain loop with dense `nn.Embedding` "
        "tables and `torch.optim.Adam` (weight decay), the same batches and negatives, "
        f"alternating round by round (`benches/bench_training.py`). {m['cpu']}, "
        f"{m.get('torch_threads', 1)} torch thread(s); load average "
        f"{m.get('load_before', '?')} before and {m.get('load_after', '?')} after; "
        f"commit {m.get('commit', '?')}, {m.get('date', '?')}.",
        "",
        "| dataset | sparse epoch (s) | dense epoch (s) | speed-up | rounds |",
        "|---|---:|---:|---:|---:|",
    ]
    for b in rows:
        lines.append(
            f"| {b['dataset']} | {fmt_s(b['rust_median_s'])} | {fmt_s(b['reference_median_s'])} "
            f"| {b['ratio']:.1f}x | {b.get('rounds', 1)} |"
        )
    lines += [
        "",
        "Regenerate this section alone: `python benches/performance.py --only training`.",
    ]
    return "\n".join(lines)


def shared_data_dir() -> Path | None:
    """The shared data sets' folder, or None (said on stderr) where absent."""
    data_dir = datasets_dir()
    if data_dir is None:
        print("shared datasets not found (set GNNO_DATA)", file=sys.stderr)
    return data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    parser.add_argument("--memory-scale", type=float, default=1.0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--gnno-threads", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="also save the raw results")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="rewrite the report from --keep's file",
    )
    parser.add_argument(
        "--only",
        choices=("training", "draws"),
        help="run one part and rewrite only its section of --out",
    )
    args = parser.parse_args(argv)
    if args.only == "training":
        from _sections import write_section

        env = dict(os.environ, GNNO_BENCH_TORCH_THREADS=str(args.torch_threads))
        m = machine(env)
        m["torch_threads"] = args.torch_threads
        m["load_before"] = load_average()
        with tempfile.TemporaryDirectory(prefix="gnno-perf-") as tmp:
            benches = run_benchmarks(env, Path(tmp) / "bench.json", "bench_training.py")
        m["load_after"] = load_average()
        write_section(args.out, "training", training_section(m, benches))
        print(f"wrote the training section of {args.out}")
        return 0
    if args.only == "draws":
        from _sections import write_section

        data_dir = shared_data_dir()
        if data_dir is None:
            return 2
        import torch

        torch.set_num_threads(args.torch_threads)
        m = machine(dict(os.environ, GNNO_BENCH_TORCH_THREADS=str(args.torch_threads)))
        m["load_before"] = load_average()
        draws = draw_times(load(data_dir))
        m["load_after"] = load_average()
        write_section(args.out, "draws", draws_section(m, draws))
        print(f"wrote the draws section of {args.out}")
        return 0
    if args.source is not None:
        saved = json.loads(args.source.read_text())
        write_report(
            args.out,
            report(
                saved["machine"],
                saved["benches"],
                saved["refresh"],
                saved["draws"],
                saved["memory"],
            ),
        )
        print(f"wrote {args.out}")
        return 0

    data_dir = shared_data_dir()
    if data_dir is None:
        return 2
    env = dict(os.environ)
    env["GNNO_BENCH_TORCH_THREADS"] = str(args.torch_threads)
    if args.gnno_threads:
        env["GNNO_NUM_THREADS"] = str(args.gnno_threads)
        import gnno

        gnno.set_num_threads(args.gnno_threads)
    import torch

    torch.set_num_threads(args.torch_threads)

    m = machine(env)
    m["load_before"] = load_average()
    with tempfile.TemporaryDirectory(prefix="gnno-perf-") as tmp:
        benches = run_benchmarks(env, Path(tmp) / "bench.json")
        data = load(data_dir)
        refresh = refresh_times(data)
        draws = draw_times(data)
        del data
        mem = run_memory(env, args.memory_scale, Path(tmp) / "memory.json")
    m["load_after"] = load_average()
    if args.keep is not None:
        args.keep.write_text(
            json.dumps(
                {
                    "machine": m,
                    "benches": benches,
                    "refresh": refresh,
                    "draws": draws,
                    "memory": mem,
                }
            )
        )
    text = report(m, benches, refresh, draws, mem)
    if any("sparse vs dense" in b.get("name", "") for b in benches):
        from _sections import replace_section

        text = replace_section(text, "training", training_section(m, benches))
    write_report(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
