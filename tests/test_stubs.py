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


def test_stubs_match_the_compiled_module():
    pytest.importorskip("mypy.stubtest")
    package_root = Path(gnno.__file__).resolve().parents[1]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(package_root), os.environ.get("PYTHONPATH", "")]),
    )
    cmd = [sys.executable, "-m", "mypy.stubtest", "gnno._gnno", "--mypy-config-file", os.devnull]
    if ALLOWLIST.exists():
        cmd += ["--allowlist", str(ALLOWLIST)]
    done = subprocess.run(
        cmd, cwd=package_root, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
