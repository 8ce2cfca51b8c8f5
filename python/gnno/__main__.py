"""``python -m gnno``: the ``gnno`` command line."""

from gnno.cli import main

raise SystemExit(main())
