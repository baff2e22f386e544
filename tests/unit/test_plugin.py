"""The pytest options: --require fails, -k selects by framework, xdist writes every record once."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CASES = """
schema: 1
cases:
  - name: small-sigmoid
    op: sigmoid_cross_entropy
    inputs: {logits: [[1.0, -2.0], [0.5, 3.0]], labels: [[1.0, 0.0], [0.0, 1.0]]}
  - name: small-sparse
    op: sparse_softmax_cross_entropy
    inputs: {logits: [[1.0, 2.0, 0.5]], labels: [1]}
    options: {reduction: mean}
"""


@pytest.fixture
def suite(pytester, request, monkeypatch):
    """A pytest run over the real plugin and matrix test, with a small case file."""
    root = request.config.rootpath
    pytester.makepyfile(test_matrix=(root / "conformance/pytest/suite/test_matrix.py").read_text())
    (pytester.path / "cases.yaml").write_text(textwrap.dedent(CASES))
    monkeypatch.setenv("PYTHONPATH", f"{pytester.path}:{root}")  # the child finds conformance/
    return pytester


def test_require_fails_when_the_framework_cannot_be_imported(suite):
    # Make `import jax` fail in the child process, as on a machine without it.
    suite.makepyfile(sitecustomize="import sys\nsys.modules['jax'] = None\n")
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "jax", "--require", "jax",
                                        "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*required framework unavailable*"])
    skipped = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "jax", "-p", "no:cacheprovider")
    assert skipped.ret == 0
    skipped.stdout.fnmatch_lines(["*jax*not-installed*"])


def test_unknown_require_id_is_a_usage_error(suite):
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "--require", "kerass")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown framework id*"])


def test_k_selects_one_frameworks_checks(suite):
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "-k", "keras", "--collect-only", "-q")
    ids = [line for line in result.outlines if "test_check[" in line]
    assert ids and all("-keras-" in i or "-tf_keras-" in i for i in ids)


def test_a_malformed_case_file_is_a_clear_usage_error(suite):
    (suite.path / "bad.yaml").write_text("schema: 1\ncases:\n  - name: x\n    op: nope\n    inputs: {}\n")
    result = suite.runpytest_subprocess("--cases", "bad.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad.yaml:4: case 'x': key 'op': unknown op*"])
    assert "Traceback" not in result.stderr.str()


NO_GPU = "import conformance.core.machine as machine\nmachine._ACCELERATOR_FILES = ()\n"
A_GPU = "import conformance.core.machine as machine\nmachine.might_have = lambda device: True\n"


def test_xdist_workers_hand_every_record_to_the_controller(suite):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (the `test` extra has it)")
    suite.makepyfile(sitecustomize=NO_GPU)
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "-n", "2",
                                        "--results", "out.json", "-p", "no:cacheprovider")
    collected = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "--collect-only", "-q")
    n = sum("test_check[" in line for line in collected.outlines)
    assert result.ret == 0, result.stdout.str()
    records = json.loads((suite.path / "out.json").read_text())["results"]
    assert len(records) == 2 * n == len({r["id"] for r in records})  # every cpu check has its cuda twin
    assert {r["framework"] for r in records} == {"numpy"}
    assert sum(r["device"] == "cpu" for r in records) == n


def test_checks_on_an_absent_device_are_recorded_without_a_test_each(suite):
    suite.makepyfile(sitecustomize=NO_GPU)
    collected = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "--collect-only", "-q")
    assert not [line for line in collected.outlines if "-cuda-" in line]
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "--device", "cuda",
                                        "--results", "out.json", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()  # recorded skips, not "no tests collected"
    records = json.loads((suite.path / "out.json").read_text())["results"]
    assert records and all(r["device"] == "cuda" and r["reason"] == "no-device" for r in records)
    result.stdout.fnmatch_lines([f"{len(records)} checks on cuda, which this machine does not have: recorded as "
                                 "skipped, not run as tests"])
    selected = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "--device", "cuda",
                                          "-k", "small-sparse", "--results", "some.json", "-p", "no:cacheprovider")
    some = json.loads((suite.path / "some.json").read_text())["results"]
    assert selected.ret == 0 and some and {r["case"] for r in some} == {"small-sparse"}  # -k applies to them too


@pytest.mark.parametrize("device, present, absent", [("cpu", "-cpu-", "-cuda-"), ("cuda", "-cuda-", "-cpu-")])
def test_device_selects_the_checks_of_one_device(suite, device, present, absent):
    suite.makepyfile(sitecustomize=A_GPU)
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "--device", device,
                                        "--collect-only", "-q")
    ids = [line for line in result.outlines if "test_check[" in line]
    assert ids and all(present in i and absent not in i for i in ids)


def test_a_plain_run_names_the_frameworks_other_processes_check(suite, monkeypatch):
    """Paddle and the other Keras 3 backends are never silently missing from a plain pytest run."""
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    monkeypatch.delenv("XENT_CONFORMANCE_PROCESS", raising=False)
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "-k", "keras-numpy", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["checked in other processes, not here: *keras-jax (set KERAS_BACKEND=jax)*"
                                 "paddle (set XENT_CONFORMANCE_PROCESS=paddle*"])


ROOT = Path(__file__).resolve().parents[2]


def test_a_run_of_named_cases_from_the_repository_collects_checks_only():
    """testpaths names tests/unit too: with --cases the suite's own tests are left out, unless named."""
    base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "--framework", "numpy",
            "--cases", "cases/article.yaml"]
    checks_only = subprocess.run(base, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "test_matrix.py::test_check" in checks_only.stdout and "tests/unit" not in checks_only.stdout
    named = subprocess.run(base + ["tests/unit/test_orchestrate.py"], capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
    assert "tests/unit/test_orchestrate.py" in named.stdout
