"""Benchmarks: run only when asked for, never under xdist, one framework per process.

`pytest`, `pytest tests/unit`, `pytest -k torch` never collect this folder: it runs when it
(or a file in it) is named on the command line, or with XENT_BENCHMARKS=1. The usual entry
point is `nox -s benchmark` (conformance/bench_run.py), which starts one process per framework
and Keras 3 backend. Settings come from --bench-* options or the XENT_BENCH_* variables that
bench_run sets: profile, framework, devices, dtypes, sizes.
"""
import json
import os
from pathlib import Path

import pytest

from conformance.bench import kernels as bench_kernels, measure as bench_measure

HERE = Path(__file__).resolve().parent


def _named_here(config):
    """Whether the command line names this folder or something in it."""
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    if path != HERE and HERE not in path.parents:
        return None
    if not _requested(config):
        return True
    if path.name == "test_reference_cost.py":  # the reference's cost is measured in the numpy process
        settings = bench_measure.settings_for(config)
        frameworks = settings.frameworks or bench_kernels.frameworks_here()
        return True if "numpy" not in frameworks or "cpu" not in settings.devices else None
    return None


def pytest_addoption(parser):
    group = parser.getgroup("xent-benchmarks")
    group.addoption("--bench-profile", help="quick (default) or full; or XENT_BENCH_PROFILE")
    group.addoption("--bench-framework", help="framework ids, comma-separated; or XENT_BENCH_FRAMEWORK")
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
    return bench_measure.settings_for(request.config)


class Limits:
    """The physical limits of each device, measured once per process, when first needed."""

    def __init__(self):
        self._cache = {}

    def get(self, device, framework):
        if device not in self._cache:
            self._cache[device] = bench_measure.cpu_limits() if device == "cpu" else _gpu_limits(framework)
        return self._cache[device]


def _gpu_limits(framework, nbytes=1 << 30, repeats=20):
    """Device-to-device copy bandwidth (2 x bytes / t, the best of `repeats`) with this process's framework."""
    import time

    def timed(fn, sync):
        fn(), sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return min(times)

    if "torch" in framework:
        import torch

        src = torch.ones(nbytes // 4, device="cuda")
        dst = torch.empty_like(src)
        t = timed(lambda: dst.copy_(src), torch.cuda.synchronize)
        method = "torch copy_"
    elif "jax" in framework:
        import jax
        import jax.numpy as jnp

        src = jax.device_put(jnp.ones(nbytes // 4, jnp.float32), jax.devices("gpu")[0])
        negate = jax.jit(jnp.negative).lower(src).compile()
        t = timed(lambda: jax.block_until_ready(negate(src)), lambda: None)
        method = "jax jit negative (one read, one write)"
    else:
        import tensorflow as tf

        with tf.device("/GPU:0"):
            src = tf.ones(nbytes // 4)
        negate = tf.function(tf.negative)
        t = timed(lambda: negate(src), tf.test.experimental.sync_devices)
        method = "tf.negative in tf.function (one read, one write)"
    return {"copy_gbps": 2 * nbytes / t / 1e9, "copy_method": f"{method} on {nbytes >> 20} MiB, 2 x bytes / best of {repeats}"}


@pytest.fixture(scope="session")
def physical_limits():
    return Limits()


def pytest_runtest_logreport(report):
    """Remember every skip with its reason: the report lists them beside the timings."""
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skips.append({"nodeid": report.nodeid, "reason": reason.removeprefix("Skipped: ")})


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
