"""Runs the Python block of README.md's "Quick start" section against the
installed gnno, on small synthetic data, and checks that it trained.

Usage: python readme_quickstart.py README.md [--epochs N]

The block is read from the README each time, so the README and this check
cannot drift apart. The block's ``users`` and ``items`` come from
``gnno.datasets.synthetic``; its ``range(20)`` becomes ``range(N)``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def quick_start_code(readme: Path) -> str:
    text = readme.read_text()
    if "## Quick start" not in text:
        raise SystemExit(f"{readme}: no '## Quick start' section")
    section = text.split("## Quick start", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise SystemExit(f"{readme}: the Quick start section has no ```python block")
    return match.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    import gnno

    code = quick_start_code(args.readme)
    if "range(20)" not in code:
        raise SystemExit("the Quick start loop no longer reads 'range(20)'; update this check")
    code = code.replace("range(20)", f"range({args.epochs})")

    data = gnno.datasets.synthetic(n_users=200, n_items=150, seed=1)
    users, items = data.train.to_pairs()
    torch.manual_seed(0)
    scope = {"users": users, "items": items}
    exec(compile(code, str(args.readme), "exec"), scope)

    model, train = scope["model"], scope["train"]
    u, i = (torch.from_numpy(a) for a in train.to_pairs())
    with torch.no_grad():
        pos = model(u, i).mean().item()
        rnd = model(u, torch.randint(0, train.n_items, (len(u),))).mean().item()
    loss = scope["loss"].item()
    print(
        f"quick start: {args.epochs} epochs, last loss {loss:.4f}, "
        f"mean score positives {pos:.3f} > random items {rnd:.3f}"
    )
    if not np.isfinite(loss) or not pos > rnd:
        print("quick start: the model did not train", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
