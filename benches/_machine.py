"""Facts about this machine and checkout that the benchmarks and the study
record beside their numbers: where the shared data sets are, the CPU's
name and the commit measured."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def datasets_path() -> Path:
    """Where the shared data sets are looked for: ``$GNNO_DATA``, else
    ``../shared/datasets`` beside the repository (present or not)."""
    env = os.environ.get("GNNO_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "datasets"


def datasets_dir() -> Path | None:
    """:func:`datasets_path` where it is a folder, else None."""
    path = datasets_path()
    return path if path.is_dir() else None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what
    ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_commit(mark_changes: bool = True) -> str:
    """The checkout's short commit, marked (``mark_changes``) where tracked
    files have uncommitted changes; ``unknown`` outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = mark_changes and git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (with uncommitted changes)" if dirty else "")


__all__ = ["cpu_model", "datasets_dir", "datasets_path", "git_commit"]
