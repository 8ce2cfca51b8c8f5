"""Times a GMF training epoch on a GPU with each of gnno's samplers, against
uniform sampling and against DNS written in pure torch, and writes the GPU
section of ``docs/PERFORMANCE.md``.

    python benches/gpu.py                  # CUDA, ML-1M: the GPU section of docs/PERFORMANCE.md
    python benches/gpu.py --device cpu --quick --output /tmp/gpu.md   # smoke test (CI)

Every configuration trains its own GMF (d=32, BPR, batch 1024, Adam) and
keeps training from round to round; the configurations alternate epoch by
epoch (interleaved), and each row is the median of ``--rounds`` epochs after
``--warmup`` warm-up epochs. Two ways of using a sampler are timed:

* the README loop: ``sampler.refresh(model)`` once an epoch, then
  ``sampler.sample_for_pairs(u, i)`` inside the training loop, batches on the
  device (the sampler copies ids to the host and negatives back);
* ``gnno.Trainer`` (``prefetch=2``): the negatives of the next batches drawn
  in a background thread while the current batch trains.

The pure-torch DNS is what a GPU user would otherwise write, in the same
README loop: per pair ``--candidates`` uniform item ids drawn on the device,
training positives among them redrawn after a membership test on the device
(``torch.searchsorted`` over the sorted ``user * n_items + item`` keys of the
CSR), the candidates scored with the current model, the best kept.

Data: ML-1M's NCF training split from ``../shared/datasets`` (or
``GNNO_DATA``, or ``--data``); a synthetic data set of ML-1M's shape when
it is absent; a small synthetic one with ``--quick``.

The output file keeps everything outside its GPU section. Numbers from a
device other than CUDA go only to an explicit ``--output``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ROOT / "benches"
DEFAULT_OUTPUT = ROOT / "docs" / "PERFORMANCE.md"
SECTION = "gpu"
SAMPLERS = ("uniform", "popularity", "dns", "srns", "gain")
TORCH_DNS = "torch DNS"

if str(BENCHES) not in sys.path:
    sys.path.insert(0, str(BENCHES))

import gnno  # noqa: E402
from _machine import cpu_model, datasets_path, git_commit  # noqa: E402
from _sections import write_section  # noqa: E402

# -- the pure-torch DNS ----------------------------------------------------------------


class TorchDNS:
    """DNS on the device: ``k`` uniform candidates per pair, positives
    redrawn, scored with the current model, the highest kept."""

    def __init__(
        self,
        train: gnno.Interactions,
        model: torch.nn.Module,
        device: torch.device,
        k: int,
        seed: int = 0,
        max_redraws: int = 100,
    ) -> None:
        indptr = torch.tensor(np.asarray(train.indptr), dtype=torch.long)
        indices = torch.tensor(np.asarray(train.indices), dtype=torch.long)
        rows = torch.repeat_interleave(torch.arange(train.n_users), indptr.diff())
        # Rows ascending, items sorted within each row: the keys are sorted.
        self.keys = (rows * train.n_items + indices).to(device)
        self.n_items = train.n_items
        self.model = model
        self.k = k
        self.max_redraws = max_redraws
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        query = users.unsqueeze(1) * self.n_items + items
        at = torch.searchsorted(self.keys, query).clamp_(max=self.keys.numel() - 1)
        return self.keys[at] == query

    def __call__(self, users: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        shape = (users.numel(), self.k)
        draw = dict(generator=self.generator, device=users.device)
        cand = torch.randint(0, self.n_items, shape, **draw)
        for _ in range(self.max_redraws):
            hit = self.is_positive(users, cand)
            if not bool(hit.any()):
                break
            cand = torch.where(hit, torch.randint(0, self.n_items, shape, **draw), cand)
        else:
            raise RuntimeError(f"torch DNS: positives still drawn after {self.max_redraws} tries")
        with torch.no_grad():
            scores = self.model(users, cand)  # (B, k)
        return cand.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)


# -- the configurations ---------------------------------------------------------------------


@dataclass
class Config:
    label: str
    way: str  # "loop" or "trainer"
    epoch: Callable[[], None]
    losses: Callable[[], list[float]]
    times: list[float] = field(default_factory=list)


def loop_config(
    label: str,
    train: gnno.Interactions,
    pairs: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    args: argparse.Namespace,
) -> Config:
    """The README's quick-start loop with sampler ``label`` (or the torch DNS)."""
    torch.manual_seed(0)
    model = gnno.GMF(train.n_users, train.n_items, dim=args.dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator(device=device)
    generator.manual_seed(0)
    pair_users, pair_items = pairs
    sampler: Any = None
    if label == TORCH_DNS:
        draw = TorchDNS(train, model, device, args.candidates)
    else:
        options = {"candidates": args.candidates} if label == "dns" else {}
        sampler = gnno.build_sampler(label, train, seed=0, **options)

        def draw(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
            return sampler.sample_for_pairs(u, i)[:, 0]

    state = {"epoch": 0}
    losses: list[torch.Tensor] = []

    def epoch() -> None:
        if sampler is not None:
            sampler.set_epoch(state["epoch"])
            sampler.refresh(model)
        order = torch.randperm(train.nnz, device=device, generator=generator)
        for batch in order.split(args.batch_size):
            u, i = pair_users[batch], pair_items[batch]
            j = draw(u, i)
            loss = gnno.bpr_loss(model(u, i), model(u, j))
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses.append(loss.detach())
        state["epoch"] += 1

    return Config(label, "loop", epoch, lambda: [float(x) for x in losses])


def trainer_config(
    label: str, train: gnno.Interactions, device: torch.device, args: argparse.Namespace
) -> Config:
    """``gnno.Trainer`` with sampler ``label``, one more epoch per call."""
    torch.manual_seed(0)
    model = gnno.GMF(train.n_users, train.n_items, dim=args.dim)
    options = {"candidates": args.candidates} if label == "dns" else {}
    sampler = gnno.build_sampler(label, train, seed=0, **options)
    trainer = gnno.Trainer(
        model,
        train,
        sampler,
        batch_size=args.batch_size,
        lr=1e-3,
        epochs=0,
        device=device,
        seed=0,
        progress=False,
        prefetch=2,
    )

    def epoch() -> None:
        trainer.epochs += 1
        trainer.fit()

    return Config(label, "trainer", epoch, lambda: [h["loss"] for h in trainer.history])


# -- measuring -------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(configs: list[Config], device: torch.device, rounds: int, warmup: int) -> None:
    """Interleaved: every configuration runs one epoch per round, in turn."""
    for r in range(warmup + rounds):
        started = time.perf_counter()
        for c in configs:
            synchronize(device)
            t = time.perf_counter()
            c.epoch()
            synchronize(device)
            if r >= warmup:
                c.times.append(time.perf_counter() - t)
        kind = "warm-up" if r < warmup else f"round {r - warmup + 1}/{rounds}"
        print(f"gpu.py: {kind} done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    for c in configs:
        losses = c.losses()
        if not losses or not all(np.isfinite(losses)):
            raise RuntimeError(f"{c.label} ({c.way}): non-finite or missing losses {losses}")


def load_data(args: argparse.Namespace) -> tuple[str, gnno.Interactions]:
    if args.quick:
        data = gnno.datasets.synthetic(n_users=300, n_items=1000, seed=0)
        return "synthetic (`--quick`)", data.train
    data_dir = Path(args.data) if args.data is not None else datasets_path()
    prefix = data_dir / "ml-1m-ncf" / "ml-1m"
    if prefix.parent.is_dir():
        return "ML-1M, NCF training split", gnno.datasets.load_ncf(prefix).train
    print("gpu.py: ML-1M not found; using synthetic data of its shape", file=sys.stderr)
    data = gnno.datasets.synthetic(n_users=6040, n_items=3706, mean_activity=165, seed=0)
    return "synthetic data of ML-1M's shape (ML-1M not found)", data.train


# -- the report --------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"{device.type} (smoke test: not a GPU measurement)"


def report(
    configs: list[Config],
    device: torch.device,
    data_name: str,
    train: gnno.Interactions,
    args: argparse.Namespace,
    command: str,
) -> str:
    med = {(c.label, c.way): statistics.median(c.times) for c in configs}
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## GPU: a GMF training epoch with each sampler",
        "",
        f"Generated by `{command}`; every number in this section comes from that run. "
        "Do not edit by hand: rerun it (the rest of this file is left as it is).",
        "",
        "| | |",
        "|---|---|",
        f"| date | {date} |",
        f"| device | {device_name(device)} |",
        f"| torch | {torch.__version__} |",
        f"| gnno | {gnno.__version__}, commit {args.commit or git_commit()} |",
        f"| host CPU | {cpu_model()}, {os.cpu_count()} cores, "
        f"{gnno.get_num_threads()} gnno threads, {torch.get_num_threads()} torch threads |",
        f"| data | {data_name}: {train.n_users:,} users, {train.n_items:,} items, "
        f"{train.nnz:,} training pairs |",
        f"| training | GMF d={args.dim}, BPR, batch {args.batch_size}, Adam lr 1e-3; "
        f"DNS with {args.candidates} candidates per pair |",
        f"| timing | median of {args.rounds} epochs after {args.warmup} warm-up epoch(s) "
        "each, the configurations interleaved epoch by epoch |",
        "",
        "**The README loop** (the sampler called inside the training loop, batches on "
        "the device). *vs uniform*: the epoch over gnno's uniform epoch; *vs torch DNS*: "
        "over the pure-torch DNS epoch (below 1 is faster).",
        "",
        "| sampler | epoch (s) | vs uniform | vs torch DNS |",
        "|---|---:|---:|---:|",
    ]
    uniform = med[("uniform", "loop")]
    torch_dns = med[(TORCH_DNS, "loop")]
    for c in configs:
        if c.way != "loop":
            continue
        s = med[(c.label, "loop")]
        name = f"`{c.label}`" if c.label != TORCH_DNS else "torch DNS (pure torch, on the device)"
        lines.append(f"| {name} | {s:.3f} | {s / uniform:.2f}x | {s / torch_dns:.2f}x |")
    if any(c.way == "trainer" for c in configs):
        t_uniform = med[("uniform", "trainer")]
        lines += [
            "",
            "**`gnno.Trainer`** (`prefetch=2`: the next batches' negatives drawn in a "
            "background thread while the current batch trains). *vs torch DNS*: over the "
            "pure-torch DNS epoch of the README loop.",
            "",
            "| sampler | epoch (s) | vs uniform | vs torch DNS |",
            "|---|---:|---:|---:|",
        ]
        for c in configs:
            if c.way == "trainer":
                s = med[(c.label, "trainer")]
                lines.append(
                    f"| `{c.label}` | {s:.3f} | {s / t_uniform:.2f}x | {s / torch_dns:.2f}x |"
                )
    lines += [
        "",
        "gnno's `dns` scores its fresh candidates with the model vectors of the epoch's "
        "`refresh(model)`; the torch DNS scores them with the current model at every batch.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    parser.add_argument(
        "--quick", action="store_true", help="small synthetic data, few epochs (smoke test)"
    )
    parser.add_argument("--output", type=Path, default=None, help=f"default: {DEFAULT_OUTPUT}")
    parser.add_argument("--data", type=Path, default=None, help="the shared datasets folder")
    parser.add_argument("--rounds", type=int, default=None, help="timed epochs (default 5; 2)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up epochs (default 1; 0)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=5, help="DNS candidates per pair")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--no-trainer", action="store_true", help="time the README loop only")
    parser.add_argument(
        "--commit", default=None, help="the commit to report (default: git's, where there is one)"
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if args.rounds < 1 or args.warmup < 0:
        parser.error(f"--rounds must be >= 1 and --warmup >= 0, got {args.rounds}, {args.warmup}")

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu.py: CUDA is not available here; use --device cpu for a smoke test")
        return 2
    output = args.output
    if output is None:
        if device.type != "cuda":
            print(
                f"gpu.py: {DEFAULT_OUTPUT.relative_to(ROOT)} holds GPU numbers only; "
                f"on {device.type} give --output",
                file=sys.stderr,
            )
            return 2
        output = DEFAULT_OUTPUT
    torch.set_num_threads(args.torch_threads)

    data_name, train = load_data(args)
    pairs = tuple(torch.from_numpy(a).to(device) for a in train.to_pairs())
    configs = [loop_config(name, train, pairs, device, args) for name in SAMPLERS]
    configs.append(loop_config(TORCH_DNS, train, pairs, device, args))
    if not args.no_trainer:
        configs += [trainer_config(name, train, device, args) for name in SAMPLERS]
    measure(configs, device, args.rounds, args.warmup)

    shown = ["python", "benches/gpu.py", *(argv if argv is not None else sys.argv[1:])]
    body = report(configs, device, data_name, train, args, shlex.join(shown))
    write_section(output, SECTION, body)
    print(body)
    print(f"wrote the {SECTION} section of {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
