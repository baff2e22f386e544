"""The suite's own cost: the float64 NumPy reference on [N, 128256] float32 logits.

reference.ops.softmax.sparse_softmax_cross_entropy is written for accuracy and clarity, not memory:
its double-double temporaries (z - max, exp in parts, the pairwise sum, ...) live together. `direct` times it as
it is; `chunked` times conformance.bench.measure.reference_loss_chunked, the same function over
blocks of rows, which the kernel benchmarks use. Where the direct form would not fit in this
machine's memory (projected from the peak measured at a smaller N) it is skipped with the numbers.
Runs in a process of its own (framework id `reference` in the runner), or in a run of everything.
"""
import platform

import numpy as np
import pytest

from conformance.bench import machine
from conformance.bench import measure as bm
from conformance.bench.kernels import reference_selected
from conformance.bench.settings import REFERENCE, REFERENCE_CLASSES, REFERENCE_ROWS, settings_for
from reference.ops.softmax import sparse_softmax_cross_entropy

C = REFERENCE_CLASSES
METHODS = ("chunked", "direct")


def pytest_generate_tests(metafunc):
    if "reference_case" in metafunc.fixturenames:
        settings = settings_for(metafunc.config)
        wanted = reference_selected(settings.frameworks) and "cpu" in settings.devices
        rows = REFERENCE_ROWS[settings.profile] if wanted else ()
        params = [(n, method) for n in rows for method in METHODS]
        metafunc.parametrize("reference_case", params, ids=[f"reference-{m}-N{n}-C{C}" for n, m in params])


_inputs = {}
_direct = {}  # what the direct form took at the largest N measured: {"n", "x"}


def inputs(n):
    if n not in _inputs:
        _inputs.clear()
        _inputs[n] = bm.make_inputs(n, C, "float32")
    return _inputs[n]


def test_reference_cost(reference_case, benchmark, bench_settings):
    n, method = reference_case
    benchmark.group = f"reference|N={n}|C={C}"
    input_bytes = n * C * 4
    if method == "direct":
        factor = _direct.get("x", 55.0)  # until measured at a smaller N: the reference of this writing
        need, available = factor * input_bytes, machine.mem_available()
        if available is not None and need > 0.8 * available:
            source = f"measured at N={_direct['n']}" if _direct else "an earlier measurement"
            pytest.skip(f"[no-memory] the direct reference needs about {need / 2**30:.1f} GiB beyond its "
                        f"{input_bytes / 2**30:.1f} GiB input ({factor:.1f}x, {source}); "
                        f"{available / 2**30:.1f} GiB available: use conformance.bench.measure.reference_loss_chunked")
    logits, labels = inputs(n)
    if method == "direct":
        def evaluate():
            return sparse_softmax_cross_entropy(logits, labels)
    else:
        def evaluate():
            return bm.reference_loss_chunked(logits, labels)

    extra = machine.rss_peak_extra(evaluate)  # also the warm-up
    if method == "chunked":  # the same values as the direct form, over the first few blocks
        rows = min(n, 4 * bm.chunk_rows(C))
        diff = np.max(np.abs(evaluate()[:rows] - sparse_softmax_cross_entropy(logits[:rows], labels[:rows])))
        assert diff <= 1e-12, f"chunked reference differs from the direct one by {diff}"
    if method == "direct" and extra is not None:
        _direct.update(n=n, x=extra / input_bytes)
    benchmark.pedantic(evaluate, rounds=3, iterations=1, warmup_rounds=0)
    median = benchmark.stats.stats.median if benchmark.stats is not None else float("nan")
    benchmark.extra_info.update({
        "framework": REFERENCE, "impl": method, "kind": "reference", "mode": "fwd", "device": "cpu",
        "device_name": machine.cpu_name(), "dtype": "float32", "N": n, "C": C, "profile": bench_settings.profile,
        "median_s": median, "input_bytes": input_bytes,
        "gelem_per_s": n * C / median / 1e9,
        "peak_extra_bytes": extra if extra is not None else "n/a",
        "peak_extra_x": extra / input_bytes if extra is not None else "n/a",
        "peak_extra_method": "resident-set high-water mark" if extra is not None else "n/a",
        "chunk_rows": bm.chunk_rows(C) if method == "chunked" else n,
        "projected_direct_peak_bytes_8192": (_direct.get("x", 55.0) + 1) * 8192 * C * 4,
        "mem_total_bytes": _mem_total(),
        "python": platform.python_version(), "numpy": np.__version__,
    })


def _mem_total():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
