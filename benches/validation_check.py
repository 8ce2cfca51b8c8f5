"""Does a full-ranking validation reward samplers that draw the test items?

``python benches/validation_check.py [--epochs 10] [--samplers uniform,dns]``

On Gowalla (LightGCN split) the study's validation (one held-out training
item per user, full ranking against every item the model did not train on)
ranks DNS and the gain sampler above uniform negatives, while the test split
does not. A possible reason: in that ranking the validation item competes
with the user's *test* items, which are unobserved positives; samplers that
draw them as negatives push them down and free top places for the
validation item.

This script trains GMF at the recipe with each sampler for a fixed number
of epochs (no early stopping, seed 0) and prints, every epoch, validation
Recall@20 as the study computes it, validation Recall@20 with the test items
also removed from the ranking (what the validation item would meet if the
test items were not there), and test Recall@20. If the gap between samplers
shrinks once the test items are removed, the validation protocol rewards
drawing them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--samplers", default="uniform,dns")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)

    import torch

    import gnno
    from gnno import protocols, recipes
    from gnno.evaluation import evaluate_full

    sys.path.insert(0, str(ROOT / "benches"))
    from conftest import datasets_dir

    data_dir = datasets_dir()
    if data_dir is None:
        print("shared datasets not found (set GNNO_DATA)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    gnno.set_num_threads(1)
    splits = protocols.load(str(data_dir / "gowalla"), "lightgcn", seed=args.seed)
    n_users, n_items = splits.fit.shape
    with_test = protocols.union([splits.fit, splits.test_set], n_users, n_items)
    settings = recipes.recipe("lightgcn", "softmax")
    rows = []
    for name in args.samplers.split(","):
        torch.manual_seed(args.seed)
        model = recipes.build_model(settings, n_users, n_items)
        sampler = gnno.build_sampler(name, splits.fit, seed=args.seed)

        started = time.perf_counter()

        def report(
            trainer: gnno.Trainer, record: dict, name: str = name, started: float = started
        ) -> None:
            m = trainer.model
            row = {
                "sampler": name,
                "epoch": record["epoch"] + 1,
                "valid": evaluate_full(m, splits.fit, splits.valid)["recall@20"],
                "valid_without_test": evaluate_full(m, with_test, splits.valid)["recall@20"],
                "test": splits.test(m)["recall@20"],
                "seconds": time.perf_counter() - started,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)

        options = recipes.trainer_options(settings)
        options.update(epochs=args.epochs, patience=None, progress=False, seed=args.seed)
        gnno.Trainer(
            model, splits.fit, sampler, loss="softmax", on_epoch_end=report, **options
        ).fit()
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    last = {r["sampler"]: r for r in rows if r["epoch"] == args.epochs}
    print("\nafter", args.epochs, "epochs (Recall@20):")
    print(f"{'sampler':10} {'valid':>8} {'valid w/o test':>15} {'test':>8}")
    for name, r in last.items():
        print(f"{name:10} {r['valid']:8.4f} {r['valid_without_test']:15.4f} {r['test']:8.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
