"""The suite's own cost: the reference's sparse softmax cross-entropy loss and logit gradient on
[N, 128256] logits, beside jitted optax doing the same in one process.

- `fast`: float32 logits, the tier every float32, bfloat16 and float16 check uses
  (reference/numerics/fast_softmax.py: plain float64, row blocks on threads, proven bound).
- `optax`: optax.softmax_cross_entropy_with_integer_labels, jax.jit of value_and_grad, float32:
  what a training step computes, on the same logits, compiled before timing.
- `double-double`: float64 logits, the tier of float64 checks (within 1 ULP), at N <= 64 only.

Each times loss and gradient together; peak extra memory is the resident set's growth while the
result is alive (the float64 gradient alone is twice the float32 logits). Runs in a process of
its own (framework id `reference` in the runner), or in a run of everything.
"""
import platform

import numpy as np
import pytest

from conformance.bench import machine
from conformance.bench import measure as bm
from conformance.bench.kernels import reference_selected
from conformance.bench.settings import REFERENCE, REFERENCE_CLASSES, REFERENCE_ROWS, settings_for
from reference.ops.softmax import sparse_softmax_cross_entropy_and_grad

C = REFERENCE_CLASSES
METHODS = ("fast", "optax", "double-double")
DOUBLE_DOUBLE_ROWS = 64  # beyond this the double-double tier takes minutes a round


def pytest_generate_tests(metafunc):
    if "reference_case" in metafunc.fixturenames:
        settings = settings_for(metafunc.config)
        wanted = reference_selected(settings.frameworks) and "cpu" in settings.devices
        rows = REFERENCE_ROWS[settings.profile] if wanted else ()
        params = [(n, method) for n in rows for method in METHODS
                  if method != "double-double" or n <= DOUBLE_DOUBLE_ROWS]
        metafunc.parametrize("reference_case", params, ids=[f"reference-{m}-N{n}-C{C}" for n, m in params])


_inputs = {}


def inputs(n, dtype):
    if (n, dtype) not in _inputs:
        _inputs.clear()
        _inputs[n, dtype] = bm.make_inputs(n, C, dtype)
    return _inputs[n, dtype]


def reference_call(logits, labels, dtype):
    def evaluate():  # both from one pass, as optax's value_and_grad computes them
        return sparse_softmax_cross_entropy_and_grad(logits, labels, -1, dtype)
    return evaluate


def optax_call(logits, labels):
    jax = pytest.importorskip("jax", reason="[not-installed] the optax comparison needs jax and optax")
    optax = pytest.importorskip("optax", reason="[not-installed] the optax comparison needs optax")
    import jax.numpy as jnp

    def total(z, y):
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(z, y))

    step = jax.jit(jax.value_and_grad(total))
    z, y = jax.device_put(jnp.asarray(logits, jnp.float32)), jax.device_put(jnp.asarray(labels, jnp.int32))
    compiled = step.lower(z, y).compile()

    def evaluate():
        return jax.block_until_ready(compiled(z, y))
    return evaluate


def test_reference_cost(reference_case, benchmark, bench_settings):
    n, method = reference_case
    dtype = "float64" if method == "double-double" else "float32"
    benchmark.group = f"reference|N={n}|C={C}"
    logits, labels = inputs(n, dtype)
    input_bytes = logits.nbytes
    evaluate = optax_call(logits, labels) if method == "optax" else reference_call(logits, labels, dtype)
    extra = machine.rss_peak_extra(evaluate)  # also the warm-up
    if method == "fast":  # the fast tier's values against the double-double tier's, on the first rows
        rows = min(n, 16)
        loss, grad = evaluate()
        exact = reference_call(logits[:rows], labels[:rows], "float64")()
        assert np.max(np.abs(loss[:rows] - exact[0])) <= 1e-12 and np.max(np.abs(grad[:rows] - exact[1])) <= 1e-15
        del loss, grad
    benchmark.pedantic(evaluate, rounds=3, iterations=1, warmup_rounds=0)
    median = benchmark.stats.stats.median if benchmark.stats is not None else float("nan")
    benchmark.extra_info.update({
        "framework": REFERENCE, "impl": method, "kind": "reference", "mode": "fwdbwd", "device": "cpu",
        "device_name": machine.cpu_name(), "dtype": dtype, "N": n, "C": C, "profile": bench_settings.profile,
        "median_s": median, "input_bytes": input_bytes,
        "gelem_per_s": n * C / median / 1e9,
        "peak_extra_bytes": extra if extra is not None else "n/a",
        "peak_extra_x": extra / input_bytes if extra is not None else "n/a",
        "peak_extra_method": "resident-set high-water mark" if extra is not None else "n/a",
        "mem_total_bytes": _mem_total(),
        "python": platform.python_version(), "numpy": np.__version__,
    })


def _mem_total():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
