"""The package as a user installs it: a wheel in a fresh virtual environment, run from a folder
that is not the repository, with the example plug-in found through its entry point.

Slow (it builds a wheel and installs torch into a new environment): `nox -s tests` runs it
after the unit tests.
"""
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"


def sh(*command, cwd=None, env=None, timeout=900):
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv with xent-conformance[torch,test] and the example plug-in, an
    unrelated working folder)."""
    base = tmp_path_factory.mktemp("installed")
    wheels = base / "wheels"
    built = sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("xent_conformance-*.whl")
    venv.create(base / "venv", with_pip=True)
    bin_dir = base / "venv" / "bin"
    done = sh(bin_dir / "python", "-m", "pip", "install", "-q", "-c", CONSTRAINTS, f"{wheel}[torch,test]",
              ROOT / "examples" / "xent-example-plugin")
    assert done.returncode == 0, done.stderr[-3000:]
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return bin_dir, elsewhere


def run(installed, *args, **env):
    bin_dir, elsewhere = installed
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(PATH=f"{bin_dir}:{environment.get('PATH', '')}", **env)
    return sh(bin_dir / "xent-conformance", "run", *args, cwd=elsewhere, env=environment)


def results(installed, folder):
    return json.loads((installed[1] / folder / "conformance.json").read_text())["results"]


def test_an_installed_suite_checks_torch_from_any_folder(installed):
    done = run(installed, "--framework", "torch", "--require", "torch", "--results-dir", "torch-run")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    records = results(installed, "torch-run")
    ran = [r for r in records if r["outcome"] != "skipped"]
    assert {r["framework"] for r in records} == {"torch"}
    assert len(ran) > 200 and {r["outcome"] for r in ran} <= {"passed", "xfailed"}
    assert any(r["case"].startswith("article-") for r in ran)  # the packaged cases, not a checkout's


def test_the_example_plugin_is_found_by_its_entry_point_and_its_fault_is_caught(installed):
    done = run(installed, "--framework", "example-kernel", "--require", "all", "--results-dir", "plugin-run")
    assert done.returncode == 0, done.stdout[-3000:]
    assert {r["outcome"] for r in results(installed, "plugin-run") if r["outcome"] != "skipped"} == {"passed"}
    broken = run(installed, "--framework", "example-kernel", "--results-dir", "fault-run",
                 XENT_EXAMPLE_FAULT="mean-grad")
    assert broken.returncode == 1
    assert "FAILED   sparse-random-mean::grad_logits::example-kernel::float32::cpu" in broken.stdout
