"""The relational check fused == log_softmax composition fails when a fused gradient
differs from the one its building blocks give, and passes when they agree."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(tmp_path, fault):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'tests' / 'unit'}:{ROOT}", "FAKE_FUSED_FAULT": fault,
           "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "pytest", str(ROOT / "conformance/pytest/suite/test_invariants.py"), "-q",
               "-p", "no:cacheprovider", "-p", "no:randomly", "--adapter", "fake_composition:FakeFused",
               "--framework", "fake-fused", "-k", "composition and sparse", "-rA",
               "--results", str(tmp_path / "out.json")]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)


@pytest.mark.parametrize("fault, returncode, failing", [("", 0, 0), ("grad", 1, 2)])
def test_a_fused_gradient_that_differs_from_its_composition_fails(tmp_path, fault, returncode, failing):
    done = run_check(tmp_path, fault)
    assert done.returncode == returncode, done.stdout[-3000:]
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == failing and all("grad_logits" in line for line in failed), failed
    assert "4 passed" in done.stdout or failing, done.stdout[-2000:]
