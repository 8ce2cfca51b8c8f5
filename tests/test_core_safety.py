"""Hostile input at the compiled core's boundary: errors, never a panic,
abort or hang; a refresh either completes or changes nothing; one sampler
shared by threads; invalid thread settings are reported."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import gnno
from gnno import _gnno
from gnno.exceptions import GnnoError, IdOutOfRangeError

ROOT = Path(__file__).resolve().parents[1]
# The gnno under test (an editable source tree or an installed wheel), for child processes.
PACKAGE_ROOT = str(Path(gnno.__file__).resolve().parents[1])
HUGE = 4611686018427387904  # 2**62


def _train():
    return gnno.datasets.synthetic(n_users=200, n_items=150, seed=3).train


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=PACKAGE_ROOT, **env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: gnno.Interactions.from_csr([0, 5, 3], [0, 1, 2], 2, 10),
        lambda: gnno.Interactions.from_csr([0, -1, 3], [0, 1, 2], 2, 10),
        lambda: gnno.Interactions.from_pairs([2**63 - 1], [0]),
        lambda: gnno.Interactions.from_pairs([0], [4_000_000_000]),
        lambda: gnno.Interactions.from_pairs([4_000_000_000], [0]),
        lambda: gnno.Interactions.from_pairs([0], [2**31]),
        lambda: _gnno.Interactions.from_csr(np.array([0], np.int64), np.array([], np.int64), -1, 3),
        lambda: _gnno.Interactions.from_pairs(
            np.array([0], np.int64), np.array([0], np.int64), None, 2**40
        ),
    ],
)
def test_bad_matrices_are_gnno_errors(call):
    with pytest.raises(GnnoError):
        call()


def test_ids_above_the_32_bit_cap_are_rejected_naming_them():
    with pytest.raises(IdOutOfRangeError, match="4000000000.*2147483647"):
        gnno.Interactions.from_pairs([0], [4_000_000_000])
    with pytest.raises(IdOutOfRangeError, match="2147483648"):
        gnno.Interactions.from_pairs([0], [2**31])


def test_huge_draw_sizes_are_errors_naming_the_value():
    train = _train()
    users = np.array([0], np.int64)
    with pytest.raises(GnnoError, match=str(HUGE)):
        _gnno.ProposalSampler(train._core, 0).sample(users, HUGE)
    with pytest.raises(GnnoError, match=str(HUGE)):
        _gnno.DynamicSampler(train._core, 0, slots=HUGE, fresh=1)
    with pytest.raises(GnnoError):
        _gnno.DynamicSampler(train._core, 0, memory_candidates=2**64 - 1, fresh_candidates=1)
    with pytest.raises(GnnoError, match=str(HUGE)):
        gnno.GainSampler(train, memory=HUGE)
    # The Python layer states a cap on per-user sizes ...
    with pytest.raises(GnnoError, match=str(HUGE)):
        gnno.GainSampler(train, gain_positives=HUGE)
    # ... and under it the core caps gain_positives by the longest row.
    core = _gnno.DynamicSampler(train._core, 1, gain_positives=HUGE, criterion="gain")
    assert core is not None
    s = gnno.GainSampler(train, gain_positives=2**20, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(2):
        s.refresh_embeddings(
            rng.standard_normal((train.n_users, 4)).astype(np.float32),
            rng.standard_normal((train.n_items, 4)).astype(np.float32),
        )
    assert s.sample(np.arange(10), 3).shape == (10, 3)


def test_the_process_survives_every_case_above():
    # The cases in a child: an abort would kill it without a Python error.
    code = (
        "import gnno, numpy as np\n"
        "from gnno import _gnno\n"
        "t = gnno.datasets.synthetic(n_users=50, n_items=40, seed=1).train\n"
        "cases = [lambda: gnno.Interactions.from_csr([0,5,3],[0,1,2],2,10),\n"
        "  lambda: gnno.Interactions.from_pairs([2**63-1],[0]),\n"
        "  lambda: gnno.UniformSampler(t).sample([0], 2**62),\n"
        "  lambda: gnno.GainSampler(t, memory=2**62)]\n"
        "for c in cases:\n"
        "    try:\n"
        "        c()\n"
        "    except Exception as e:\n"
        "        assert isinstance(e, gnno.exceptions.GnnoError), repr(e)\n"
        "print('survived')\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "survived" in out.stdout


def _vectors(train, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    uv = (rng.standard_normal((train.n_users, 4)) * scale).astype(np.float32)
    iv = (rng.standard_normal((train.n_items, 4)) * scale).astype(np.float32)
    return uv, iv


@pytest.mark.parametrize("name", ["gain", "dns", "srns"])
def test_a_failed_refresh_changes_nothing(name):
    train = _train()
    make = {
        "gain": lambda: gnno.GainSampler(train, seed=2),
        "dns": lambda: gnno.DNSSampler(train, seed=2),
        "srns": lambda: gnno.SRNSSampler(train, seed=2),
    }[name]
    overflowing = _vectors(train, scale=1e30)
    s = make()
    with pytest.raises(GnnoError):
        s.refresh_embeddings(*overflowing)
    with pytest.raises(GnnoError, match="refresh"):
        s.sample(np.arange(5), 2)  # never refreshed: still refuses

    s.refresh_embeddings(*_vectors(train, seed=1))
    state = s.state_dict()
    with pytest.raises(GnnoError):
        s.refresh_embeddings(*overflowing)
    after = s.state_dict()
    reference = make()
    reference.load_state_dict(state)
    users = np.arange(train.n_users)
    assert np.array_equal(s.sample(users, 3), reference.sample(users, 3))
    assert (after["seed"], after["epoch"], after["calls"]) == (
        state["seed"],
        state["epoch"],
        state["calls"],
    )
    for key in ("items", "h", "g", "observations"):
        assert np.array_equal(after["memory"][key], state["memory"][key], equal_nan=key != "items")


@pytest.mark.parametrize("name", ["uniform", "gain"])
def test_a_shared_sampler_serves_several_threads(name):
    train = _train()
    users = np.arange(train.n_users).repeat(5)

    def make():
        if name == "uniform":
            return gnno.UniformSampler(train, seed=4)
        s = gnno.GainSampler(train, seed=4)
        s.refresh_embeddings(*_vectors(train, seed=5))
        return s

    shared, serial = make(), make()
    results: list[np.ndarray] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def work():
        try:
            barrier.wait()
            for _ in range(5):
                out = shared.sample(users, 2)
                with lock:
                    results.append(out)
        except BaseException as e:  # noqa: BLE001 - collected and re-raised
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected = [serial.sample(users, 2) for _ in range(30)]
    # Calls ran one at a time: the same 30 draws, in some order.
    assert sorted(r.tobytes() for r in results) == sorted(e.tobytes() for e in expected)
    for r in results:
        assert not train._core.contains(users.repeat(2), r.reshape(-1).astype(np.int64)).any()


@pytest.mark.parametrize("value", ["999999999999", "0", "-3", "lots"])
def test_an_invalid_thread_variable_is_reported_not_ignored(value):
    out = _run(
        "import gnno, numpy as np\n"
        "t = gnno.datasets.synthetic(n_users=50, n_items=40, seed=1).train\n"
        "gnno.UniformSampler(t).sample(np.arange(50).repeat(700), 2)\n"
        "print(gnno.get_num_threads())\n",
        GNNO_NUM_THREADS=value,
    )
    assert out.returncode == 0, out.stderr
    assert "RuntimeWarning" in out.stderr and "GNNO_NUM_THREADS" in out.stderr
    assert value in out.stderr
    assert 1 <= int(out.stdout.strip()) <= 1024


def test_a_valid_thread_variable_is_used():
    out = _run("import gnno; print(gnno.get_num_threads())", GNNO_NUM_THREADS="3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3" and "Warning" not in out.stderr


def test_an_id_above_the_cap_in_a_data_file_is_a_clean_error(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 4000000000\n")
    (tmp_path / "test.txt").write_text("0 3\n1 5\n")
    with pytest.raises(GnnoError, match="4000000000"):
        gnno.datasets.load_lightgcn(tmp_path)
