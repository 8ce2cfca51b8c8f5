"""Memory of each sampler's state and of its refresh, at scale.

    python benches/memory.py                      # 1M users x 100k items x 50M pairs
    python benches/memory.py --scale 0.25 --json out.json

A synthetic training set (users uniform, item popularity a power law) is
written once as CSR arrays; each sampler is then measured in a fresh process
so that nothing of one measurement stays in the next. The compiled core
allocates outside Python's allocator (tracemalloc cannot see it), so the
figures are the process's resident memory from ``/proc/self/status``:
``VmRSS`` differences for what is held, ``VmHWM`` (peak, reset through
``/proc/self/clear_refs``) for what a refresh or a draw needs at its height.

Run at two scales (``--compare``), the state grows with users, slots and
interactions, never with users x items.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# What is measured: the samplers at their default settings.
SAMPLERS = ("uniform", "popularity", "dns", "srns", "gain")
FULL = {"users": 1_000_000, "items": 100_000, "interactions": 50_000_000}
DIM = 32
BATCH = 1024


# -- the process's memory ------------------------------------------------------


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def rss() -> int:
    """Resident bytes now."""
    return _status()["VmRSS"]


def peak() -> int:
    """Most resident bytes since the last ``reset_peak``."""
    return _status()["VmHWM"]


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def settle() -> None:
    """Frees what Python and the C allocator still hold, so that RSS is
    what is live."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


# -- the data ----------------------------------------------------------------------


def make_dataset(
    n_users: int, n_items: int, n_interactions: int, seed: int = 0, alpha: float = 0.8
) -> Any:
    """``n_interactions`` draws of (uniform user, item with probability
    ``∝ rank^-alpha``), duplicates dropped, as ``gnno.Interactions``."""
    import gnno

    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.arange(1, n_items + 1, dtype=np.float64) ** -alpha)
    cdf /= cdf[-1]
    # Item ids shuffled, so that popularity is not ordered by id.
    perm = rng.permutation(n_items).astype(np.int64)
    users = rng.integers(0, n_users, size=n_interactions, dtype=np.int64)
    items = np.empty(n_interactions, dtype=np.int64)
    chunk = 5_000_000
    for lo in range(0, n_interactions, chunk):
        hi = min(n_interactions, lo + chunk)
        items[lo:hi] = perm[np.searchsorted(cdf, rng.random(hi - lo))]
    return gnno.Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)


# -- one sampler, in its own process -------------------------------------------------


def measure_one(data_dir: Path, name: str, seed: int = 0) -> dict[str, Any]:
    import gnno

    indptr = np.load(data_dir / "indptr.npy")
    indices = np.load(data_dir / "indices.npy")
    n_users, n_items = len(indptr) - 1, int(np.load(data_dir / "n_items.npy"))
    train = gnno.Interactions.from_csr(indptr, indices, n_users, n_items)
    del indptr, indices
    settle()
    base = rss()

    t0 = time.perf_counter()
    sampler = gnno.build_sampler(name, train, seed=seed)
    build_s = time.perf_counter() - t0
    settle()
    built = rss()

    rng = np.random.default_rng(seed)
    U = rng.normal(0.0, 0.1, size=(n_users, DIM)).astype(np.float32)
    V = rng.normal(0.0, 0.1, size=(n_items, DIM)).astype(np.float32)
    settle()
    with_vectors = rss()

    refreshes = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        settle()
        before = rss()
        reset_peak()
        t0 = time.perf_counter()
        if sampler.needs_scores:
            sampler.refresh_embeddings(U, V)
        seconds = time.perf_counter() - t0
        top = peak()
        settle()
        refreshes.append(
            {"seconds": seconds, "peak_extra": top - before, "held_after": rss() - with_vectors}
        )

    users = rng.integers(0, n_users, size=BATCH)
    positives = np.array([train.row(u)[0] for u in users], dtype=np.int64)
    settle()
    before = rss()
    reset_peak()
    t0 = time.perf_counter()
    sampler.sample_for_pairs(users, positives, 1)
    draw_s = time.perf_counter() - t0
    draw_peak = peak() - before

    # What the state is made of, from the arrays a state_dict would hold.
    slots = slot_bytes = positive_bytes = snapshot_bytes = 0
    if sampler.needs_scores:
        items, h, g, obs, hist, pos_hist, *_ = sampler._core.get_state()
        slots = items.size // n_users
        slot_bytes = sum(a.nbytes for a in (items, h, g, obs, hist))
        positive_bytes = pos_hist.nbytes
        past, now, _ = sampler._core.get_embeddings()
        snapshot_bytes = sum(a.nbytes + b.nbytes for a, b in [*past, *([now] if now else [])])
    state = refreshes[-1]["held_after"] + (built - base)
    return {
        "sampler": name,
        "users": n_users,
        "items": n_items,
        "nnz": train.nnz,
        "slots": slots,
        "slot_bytes": slot_bytes,
        "positive_bytes": positive_bytes,
        "data_bytes": base,
        "build_seconds": build_s,
        "built_bytes": built - base,
        "state_bytes": state,
        "snapshot_bytes": snapshot_bytes,
        "refreshes": refreshes,
        "draw_seconds": draw_s,
        "draw_peak_extra": draw_peak,
        "threads": gnno.get_num_threads(),
    }


def measure(scale: float = 1.0, samplers: tuple[str, ...] = SAMPLERS) -> dict[str, Any]:
    """Builds the data at ``scale`` x the full size, then measures each
    sampler in a child process."""
    sizes = {k: max(1, int(v * scale)) for k, v in FULL.items()}
    t0 = time.perf_counter()
    train = make_dataset(sizes["users"], sizes["items"], sizes["interactions"])
    make_s = time.perf_counter() - t0
    rows = []
    with tempfile.TemporaryDirectory(prefix="gnno-memory-") as tmp:
        data_dir = Path(tmp)
        np.save(data_dir / "indptr.npy", np.asarray(train.indptr))
        np.save(data_dir / "indices.npy", np.asarray(train.indices))
        np.save(data_dir / "n_items.npy", np.array(train.n_items))
        nnz = train.nnz
        del train
        settle()
        for name in samplers:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(data_dir), name],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"sizes": sizes, "nnz": nnz, "make_seconds": make_s, "samplers": rows}


# -- report ---------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def per_slot(r: dict[str, Any]) -> str:
    """Bytes of the per-slot arrays per (user x slot)."""
    return f"{r['slot_bytes'] / (r['users'] * r['slots']):.0f}" if r["slots"] else "-"


def table(result: dict[str, Any]) -> list[str]:
    s = result["sizes"]
    lines = [
        f"{s['users']:,} users x {s['items']:,} items, {result['nnz']:,} interactions "
        f"(users x items = {s['users'] * s['items']:.2e}); the data itself "
        f"{mib(result['samplers'][0]['data_bytes'])} MiB resident",
        "",
        "| sampler | state (MiB, RSS) | slots/user | slot arrays (MiB) | bytes per user-slot "
        "| per-positive arrays (MiB) | model snapshots (MiB) | rest (MiB) "
        "| refresh: peak extra (MiB) | refresh (s) | draw of 1024: peak extra (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["samplers"]:
        last = r["refreshes"][-1]
        rest = r["state_bytes"] - r["slot_bytes"] - r["positive_bytes"] - r["snapshot_bytes"]
        lines.append(
            f"| {r['sampler']} | {mib(r['state_bytes'])} | {r['slots']} | {mib(r['slot_bytes'])} "
            f"| {per_slot(r)} | {mib(r['positive_bytes'])} | {mib(r['snapshot_bytes'])} "
            f"| {mib(rest)} | {mib(last['peak_extra'])} | {last['seconds']:.2f} "
            f"| {mib(r['draw_peak_extra'])} |"
        )
    return lines


def scaling(small: dict[str, Any], full: dict[str, Any]) -> list[str]:
    su, fu = small["sizes"], full["sizes"]
    grid = (fu["users"] * fu["items"]) / (su["users"] * su["items"])
    lines = [
        f"From {su['users']:,} x {su['items']:,} to {fu['users']:,} x {fu['items']:,}: users "
        f"x{fu['users'] / su['users']:.1f}, interactions x{full['nnz'] / small['nnz']:.1f}, "
        f"users x items x{grid:.1f}.",
        "",
        "| sampler | state, small (MiB) | state, full (MiB) | growth | refresh peak growth |",
        "|---|---:|---:|---:|---:|",
    ]

    def growth(a: float, b: float) -> str:
        # Below a MiB, page-sized noise says nothing.
        return f"x{b / a:.2f}" if min(a, b) >= 2**20 else "-"

    for a, b in zip(small["samplers"], full["samplers"], strict=True):
        peaks = a["refreshes"][-1]["peak_extra"], b["refreshes"][-1]["peak_extra"]
        lines.append(
            f"| {a['sampler']} | {mib(a['state_bytes'])} | {mib(b['state_bytes'])} "
            f"| {growth(a['state_bytes'], b['state_bytes'])} | {growth(*peaks)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1M x 100k x 50M")
    parser.add_argument(
        "--compare", type=float, default=None, help="also measure at this scale, for growth"
    )
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--child", nargs=2, metavar=("DATA", "SAMPLER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_one(Path(args.child[0]), args.child[1])))
        return 0
    samplers = tuple(args.samplers.split(","))
    out: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count()}
    if args.compare is not None:
        out["small"] = measure(args.compare, samplers)
    out["full"] = measure(args.scale, samplers)
    print("\n".join(table(out["full"])))
    if "small" in out:
        print()
        print("\n".join(scaling(out["small"], out["full"])))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
