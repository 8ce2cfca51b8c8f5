"""``benches/gpu.py`` runs (on the CPU, ``--quick``): a smoke test of the GPU
check, which writes its section of a copy of the report and nothing else.

The pure-torch DNS it times against is checked here too: it never returns
a training positive, and it returns the best-scored of its candidates.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import gnno
from _sections import get_section, keep_sections, markers, replace_section

GPU = Path(__file__).resolve().parent / "gpu.py"
ROOT = GPU.parents[1]
LABELS = ["`uniform`", "`popularity`", "`dns`", "`srns`", "`gain`", "torch DNS"]


def run_gpu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GPU), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_gpu_check_runs_on_the_cpu_and_writes_only_its_section(tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    before = "# Performance\n\nWritten by another script.\n\n## Machine\n\n| a | b |\n"
    out.write_text(before)
    for _ in range(2):  # the second run replaces the section
        proc = run_gpu("--device", "cpu", "--quick", "--output", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert text.startswith(before)
    begin, end = markers("gpu")
    assert text.count(begin) == 1 and text.count(end) == 1
    section = get_section(text, "gpu")
    assert "not a GPU measurement" in section
    # One row per configuration, README loop and Trainer: finite positive
    # medians and ratios, uniform at 1.00x of itself.
    rows = [
        line for line in section.splitlines() if line.startswith("| `") or "torch DNS (" in line
    ]
    assert len(rows) == len(LABELS) + 5
    for label in LABELS:
        assert any(row.startswith(f"| {label}") for row in rows), label
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        seconds = float(cells[1])
        ratios = [float(c.rstrip("x")) for c in cells[2:]]
        assert seconds > 0 and math.isfinite(seconds)
        assert all(r > 0 and math.isfinite(r) for r in ratios)
    assert sum(1 for row in rows if re.match(r"\| `uniform` \| [0-9.]+ \| 1\.00x", row)) == 2


def test_gpu_check_writes_the_report_only_with_cuda():
    report = ROOT / "docs" / "PERFORMANCE.md"
    before = report.read_bytes() if report.exists() else None
    proc = run_gpu("--device", "cpu", "--quick")
    assert proc.returncode == 2
    assert "give --output" in proc.stderr
    assert (report.read_bytes() if report.exists() else None) == before


def test_sections_are_replaced_in_place_and_kept_across_rewrites():
    text = "# T\n\nintro\n"
    one = replace_section(text, "gpu", "## GPU\n\nfirst")
    assert one.startswith(text) and "first" in one
    two = replace_section(one + "\n## After\n", "gpu", "## GPU\n\nsecond")
    assert "first" not in two and "second" in two and two.endswith("## After\n")
    # A regenerated report without the section gets the old one back.
    regenerated = keep_sections(two, "# T\n\nnew intro\n", ("gpu",))
    assert "new intro" in regenerated and get_section(regenerated, "gpu") == get_section(two, "gpu")


def test_torch_dns_draws_no_positive_and_keeps_the_best_candidate():
    sys.path.insert(0, str(GPU.parent))
    from gpu import TorchDNS

    train = gnno.datasets.synthetic(n_users=50, n_items=300, seed=3).train
    torch.manual_seed(0)
    model = gnno.GMF(train.n_users, train.n_items, dim=8)
    dns = TorchDNS(train, model, torch.device("cpu"), k=4, seed=1)
    users, items = (torch.from_numpy(a) for a in train.to_pairs())
    dense = np.zeros((train.n_users, train.n_items), dtype=bool)
    dense[users.numpy(), items.numpy()] = True

    # The membership test agrees with the data, for every (user, item).
    all_users = torch.arange(train.n_users).repeat_interleave(train.n_items)
    all_items = torch.arange(train.n_items).repeat(train.n_users)
    member = dns.is_positive(all_users, all_items.unsqueeze(1)).squeeze(1)
    assert np.array_equal(member.numpy().reshape(dense.shape), dense)

    neg = dns(users, items)
    assert neg.shape == users.shape and neg.dtype == torch.long
    assert not dense[users.numpy(), neg.numpy()].any()

    # With a model that records what it scored (score = item id, a known
    # order), each negative is the best of its row's candidates, and no
    # candidate is a positive.
    class Recording(torch.nn.Module):
        def forward(self, u, c):
            self.seen = c.clone()
            return c.float() * 1.0 + 0.0 * u.unsqueeze(1).float()

    recorder = Recording()
    dns.model = recorder
    neg = dns(users, items)
    cand = recorder.seen
    assert cand.shape == (len(users), 4)
    assert torch.equal(neg, cand.max(1).values)
    assert not dense[users.numpy()[:, None], cand.numpy()].any()


def test_performance_report_keeps_the_gpu_section(tmp_path):
    from performance import write_report

    out = tmp_path / "PERFORMANCE.md"
    out.write_text(replace_section("# old report\n", "gpu", "## GPU\n\nmeasured"))
    write_report(out, "# new report\n")
    text = out.read_text()
    assert text.startswith("# new report\n") and "old report" not in text
    assert "measured" in get_section(text, "gpu")
