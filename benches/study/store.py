"""The run store: one JSON file per finished run, ``<dir>/<key>.json``.

A file is written (atomically) only when its run has finished, so a killed
invocation loses at most the run in progress and the next one resumes from
the finished files. ``--commit`` adds each file to git as it is written, so
finished runs survive the session.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Store:
    """Finished runs by key, in ``folder``."""

    def __init__(self, folder: Path, commit: bool = False) -> None:
        self.folder = Path(folder)
        self.commit = commit
        self._runs: dict[str, dict[str, Any]] | None = None

    def path(self, key: str) -> Path:
        if "/" in key or key.startswith("."):
            raise ValueError(f"run key {key!r} is not a file name")
        return self.folder / f"{key}.json"

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        """Every finished run, by key (read once; ``save`` keeps it current)."""
        if self._runs is None:
            self._runs = {}
            if self.folder.is_dir():
                for path in sorted(self.folder.glob("*.json")):
                    record = json.loads(path.read_text())
                    self._runs[record["key"]] = record
        return self._runs

    def __contains__(self, key: str) -> bool:
        return key in self.runs

    def get(self, key: str) -> dict[str, Any] | None:
        return self.runs.get(key)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.runs.values())

    def __len__(self) -> int:
        return len(self.runs)

    def save(self, record: dict[str, Any]) -> Path:
        """Writes ``record`` (which has a ``key``) and, with ``commit``,
        commits that one file to git."""
        path = self.path(record["key"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")
        os.replace(tmp, path)
        self.runs[record["key"]] = record
        if self.commit:
            git_commit_file(path, f"study: {record['key']}")
        return path


def git_commit_file(path: Path, message: str) -> None:
    """``git add`` and commit ``path`` alone (nothing else staged goes in)."""
    cwd = path.parent
    subprocess.run(["git", "add", "--", path.name], cwd=cwd, check=True)
    subprocess.run(
        ["git", "commit", "--quiet", "-m", message, "--", path.name], cwd=cwd, check=True
    )


__all__ = ["Store", "git_commit_file"]
