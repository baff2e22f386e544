"""XENT_CONFORMANCE_FAST_EXIT=1 (set by `run` for its processes): once pytest has written the
results and the JUnit XML, the process ends with pytest's exit status before any native
destructor runs. A crash at interpreter exit (the issue's double free) stands in as os.abort
registered with atexit."""
import json
import textwrap
import xml.etree.ElementTree as ET

import pytest

from conformance.pytest.plugin import FAST_EXIT_VARIABLE

pytest_plugins = ["pytester"]

CASES = """
schema: 1
cases:
  - name: small-sigmoid
    op: sigmoid_cross_entropy
    inputs: {logits: [[1.0, -2.0], [0.5, 3.0]], labels: [[1.0, 0.0], [0.0, 1.0]]}
"""
CRASH_AT_EXIT = ("import atexit, os, resource\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
                 "atexit.register(os.abort)\n")


@pytest.fixture
def suite(pytester, request, monkeypatch):
    """The real plugin and matrix test, a failing plain test beside them, and a crash at exit."""
    root = request.config.rootpath
    pytester.makepyfile(test_matrix=(root / "conformance/pytest/suite/test_matrix.py").read_text(),
                        test_other="def test_fails():\n    assert False\n", sitecustomize=CRASH_AT_EXIT)
    (pytester.path / "cases.yaml").write_text(textwrap.dedent(CASES))
    monkeypatch.setenv("PYTHONPATH", f"{pytester.path}:{root}")
    monkeypatch.delenv(FAST_EXIT_VARIABLE, raising=False)
    return pytester


def run(suite, *args):
    return suite.runpytest_subprocess("--cases", "cases.yaml", "--framework", "numpy", "-p", "no:cacheprovider",
                                      "--results", "out.json", "--junitxml", "junit.xml", *args)


def written(suite):
    records = json.loads((suite.path / "out.json").read_text())["results"]
    cases = ET.parse(suite.path / "junit.xml").getroot().iter("testcase")
    return records, [case.get("name") for case in cases]


def test_without_the_variable_a_crash_at_exit_is_the_exit_status(suite):
    result = run(suite)
    assert result.ret == -6  # what `run` met: every result written, then SIGABRT
    records, _ = written(suite)
    assert records


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_with_it_the_process_ends_with_pytests_status_and_every_file_written(suite, monkeypatch, workers):
    monkeypatch.setenv(FAST_EXIT_VARIABLE, "1")
    result = run(suite, *workers)
    assert result.ret == 1, result.stdout.str()[-2000:]  # test_fails failed: pytest's status, not the crash's
    records, tests = written(suite)
    assert records and {r["framework"] for r in records} == {"numpy"}
    assert "test_fails" in tests and sum(name.startswith("test_check[") for name in tests) >= 1
    result.stdout.fnmatch_lines(["*1 failed*passed*"])  # the last line, flushed before the exit
    passing = run(suite, "-k", "test_check", *workers)
    assert passing.ret == 0


def test_a_usage_error_still_exits_as_pytest_does(suite, monkeypatch):
    monkeypatch.setenv(FAST_EXIT_VARIABLE, "1")
    result = suite.runpytest_subprocess("--cases", "cases.yaml", "--require", "kerass")
    assert result.ret == -6  # pytest's own ending (exit 4), then the crash at exit: nothing written to keep
