"""The sharded checks on ranks torchrun started (conformance.sharded.torchrun_checks): rank 0 runs
the checks, the other ranks serve them, and layouts of another size are counted as skipped."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.sharded import torchrun_checks

ROOT = Path(__file__).resolve().parents[2]


def test_rank_0_runs_the_suite_in_one_process_over_the_sharded_cases_unless_named():
    arguments = torchrun_checks.pytest_arguments(["--framework", "torch-dtensor"])
    assert arguments[0].endswith("test_matrix.py") and "no:xdist" in arguments
    assert arguments[arguments.index("--cases") + 1].endswith("cases/sharded.yaml")
    named = torchrun_checks.pytest_arguments(["--cases=mine.yaml"])
    assert "--cases" not in named and "--cases=mine.yaml" in named


def test_outside_torchrun_it_says_how_to_start_it(monkeypatch, capsys):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_checks.main([]) == 2
    assert "torchrun" in capsys.readouterr().err


def test_two_ranks_of_torchrun_run_the_checks_of_their_size(tmp_path):
    pytest.importorskip("torch.distributed")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None or not _dtensor_installed():
        pytest.skip("needs torchrun and the xent-sharded plug-in (torch-dtensor)")
    results = tmp_path / "out.json"
    done = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2",
                           "-m", "conformance.sharded.torchrun_checks", "--framework", "torch-dtensor",
                           "--results", str(results), "-q", "-k", "sharded-uneven-vocab-7 and float64"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = json.loads(results.read_text())["results"]
    ran = {r["id"].rsplit("::", 1)[-1] for r in records if r["outcome"] == "passed"}
    assert ran == {"vocab2", "batch2"}  # the world's two ranks, on either axis
    assert any(r["quantity"] == "rank_agreement" and r["outcome"] == "passed" for r in records)


def _dtensor_installed() -> bool:
    from importlib import metadata

    return any(p.name == "torch-dtensor" for p in metadata.entry_points(group="xent_conformance.adapters"))
