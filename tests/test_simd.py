"""Every SIMD path the CPU supports gives the same draws and, to float
tolerance, the same kernel values: each path runs in a subprocess with
``GNNO_SIMD`` forcing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gnno
from gnno import kernels

ROOT = Path(__file__).resolve().parents[1]
# The gnno under test (an editable source tree or an installed wheel), for child processes.
PACKAGE_ROOT = str(Path(gnno.__file__).resolve().parents[1])

PROBE = r"""
import json, numpy as np, gnno
from gnno import kernels
rng = np.random.default_rng(7)
n_users, n_items = 120, 90
data = gnno.Interactions.from_pairs(
    rng.integers(0, n_users, 2500), rng.integers(0, n_items, 2500),
    n_users=n_users, n_items=n_items)
uv = rng.standard_normal((n_users, 8)).astype(np.float32)
iv = rng.standard_normal((n_items, 8)).astype(np.float32)
users = np.arange(n_users).repeat(30)
out = {"path": kernels.simd_path()}
out["uniform"] = gnno.UniformSampler(data, seed=3).sample(users, 4).tolist()
for name, make in [
    ("dns", lambda: gnno.DNSSampler(data, seed=3)),
    ("srns", lambda: gnno.SRNSSampler(data, seed=3)),
    ("gain", lambda: gnno.GainSampler(data, seed=3)),
]:
    s = make()
    s.refresh_embeddings(uv, iv)
    s.refresh_embeddings(uv + 0.1, iv)
    out[name] = s.sample(users, 3).tolist()
indptr = data.indptr.astype(np.int64)
pos = rng.standard_normal(data.nnz).astype(np.float32)
cand = rng.standard_normal((n_users, 33)).astype(np.float32) * 3
out["expectation"] = kernels.sigmoid_expectation(indptr, pos, cand).tolist()
print(json.dumps(out))
"""


def _probe(path: str) -> dict:
    env = dict(os.environ, GNNO_SIMD=path, PYTHONPATH=PACKAGE_ROOT)
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_chosen_path_is_one_the_cpu_supports():
    assert kernels.simd_path() in kernels.simd_paths()
    assert kernels.simd_paths()[0] == "generic"


def test_every_supported_path_agrees():
    paths = kernels.simd_paths()
    results = {p: _probe(p) for p in paths}
    base = results["generic"]
    for path, got in results.items():
        assert got["path"] == path
        for key in ("uniform", "dns", "srns", "gain"):
            assert got[key] == base[key], f"{path}: {key} draws differ from generic"
        np.testing.assert_allclose(
            np.array(got["expectation"]), np.array(base["expectation"]), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("value", ["sse9", "AVX-1024"])
def test_an_unknown_path_falls_back_with_a_warning(value):
    env = dict(os.environ, GNNO_SIMD=value, PYTHONPATH=PACKAGE_ROOT)
    out = subprocess.run(
        [sys.executable, "-c", "import gnno; print(gnno.kernels.simd_path())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "RuntimeWarning" in out.stderr and value in out.stderr
    assert out.stdout.strip() == kernels.simd_paths()[-1]
