"""The type stubs of the compiled module (``python/gnno/_gnno.pyi``) match
the module that is built, checked by mypy's stubtest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gnno

ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")


def test_stubs_match_the_compiled_module(tmp_path):
    pytest.importorskip("mypy.stubtest")
    # The gnno under test, alone in a folder: an installed gnno sits in
    # site-packages, whose other modules mypy would take for the user's own.
    (tmp_path / "gnno").symlink_to(Path(gnno.__file__).resolve().parent)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    cmd = [sys.executable, "-m", "mypy.stubtest", "gnno._gnno", "--mypy-config-file", os.devnull]
    if ALLOWLIST.exists():
        cmd += ["--allowlist", str(ALLOWLIST)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
