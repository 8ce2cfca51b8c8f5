"""``python benches/study [options]``: the study; ``python benches/study
recipe [options]``: the recipe search (``recipe.py``). ``--help`` for each."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a folder: import this package as ``study`` from ``benches/`` (not
# its modules as top-level names).
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)
elif str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from study.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
