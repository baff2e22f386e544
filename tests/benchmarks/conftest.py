"""Benchmarks: run only when asked for, never under xdist, one framework per process.

`pytest`, `pytest tests/unit`, `pytest -k torch` never collect this folder: it runs when it
(or a file in it) is named on the command line, or with XENT_BENCHMARKS=1. The usual entry
point is `nox -s benchmark` (conformance/bench/run.py), which starts one process per framework
(and one for the reference's own cost). Settings come from --bench-* options or the
XENT_BENCH_* variables that run.py sets: profile, framework, devices, dtypes, sizes.
"""
import json
import os
from pathlib import Path

import pytest

from conformance.bench import machine
from conformance.bench.kernels import reference_selected
from conformance.bench.settings import REFERENCE, settings_for

HERE = Path(__file__).resolve().parent


def _named_here(config, target=HERE):
    """Whether the command line names this folder or something in it (or target, a file in it)."""
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / arg.split("::")[0]).resolve()
        if path == target or target in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    if path != HERE and HERE not in path.parents:
        return None
    if not _requested(config):
        return True
    settings = settings_for(config)
    if path.name == "test_reference_cost.py":  # the reference's own process (or a run of everything)
        wanted = reference_selected(settings.frameworks) and "cpu" in settings.devices
        return None if wanted else True
    if path.name == "test_linear_cross_entropy.py":  # its own run: named on the command line
        return None if _named_here(config, path) else True
    if path.name == "test_kernels.py" and settings.frameworks:
        return None if set(settings.frameworks) - {REFERENCE} else True
    return None


def pytest_addoption(parser):
    group = parser.getgroup("xent-benchmarks")
    group.addoption("--bench-profile", help="quick (default) or full; or XENT_BENCH_PROFILE")
    group.addoption("--bench-framework", help="framework ids (or reference), comma-separated; or XENT_BENCH_FRAMEWORK")
    group.addoption("--bench-devices", help="cpu,cuda (default both; cuda skips without a GPU)")
    group.addoption("--bench-dtypes", help="float32 (default), bfloat16, float16, float64")
    group.addoption("--bench-sizes", help="explicit NxC sizes, e.g. 8192x32000,8192x128256")
    group.addoption("--bench-classes", help="class counts of the profile, e.g. 1000,32000")


def _requested(config):
    return os.environ.get("XENT_BENCHMARKS") == "1" or _named_here(config)


def pytest_configure(config):
    if not _requested(config):
        return  # collected past on the way to other tests: ignored below
    if getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput"):
        raise pytest.UsageError("benchmarks never run under pytest-xdist: drop -n "
                                "(nox -s benchmark runs one process per framework)")


@pytest.fixture(scope="session")
def bench_settings(request):
    return settings_for(request.config)


class Limits:
    """The physical limits of each device, measured once per process, when first needed."""

    def __init__(self):
        self._cache = {}

    def get(self, device, gpu_probes=None):
        """cpu: NumPy over every core; cuda: with the GpuProbes of the framework being timed."""
        key = device if device == "cpu" else (device, gpu_probes)
        if key not in self._cache:
            self._cache[key] = machine.cpu_limits() if device == "cpu" else machine.gpu_limits(gpu_probes)
        return self._cache[key]


@pytest.fixture(scope="session")
def physical_limits():
    return Limits()


def pytest_runtest_logreport(report):
    """Remember every skip with its reason (and framework): the report lists them beside the timings."""
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        skip = {"nodeid": report.nodeid, "reason": reason.removeprefix("Skipped: ")}
        skip.update((k, v) for k, v in report.user_properties if k == "framework")
        _skips.append(skip)


_skips = []


def pytest_sessionfinish(session):
    if not _requested(session.config):
        return
    path = os.environ.get("XENT_BENCH_SKIPS")
    if not path:
        target = session.config.getoption("benchmark_json", None)
        if not target:
            return
        path = str(Path(str(target)).with_suffix(".skips.json"))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"skipped": _skips}, indent=1) + "\n")
