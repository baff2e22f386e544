"""The suite's own cost: the reference's sparse softmax cross-entropy loss and logit gradient on
[N, 128256] logits, beside jitted optax doing the same in one process.

- `fast`: float32 logits, the tier every float32, bfloat16 and float16 check uses
  (reference/numerics/fast_softmax.py: plain float64, row blocks on threads, proven bound).
- `optax`: optax.softmax_cross_entropy_with_integer_labels, jax.jit of value_and_grad, float32:
  what a training step computes, on the same logits, compiled before timing.
- `double-double`: float64 logits, the tier of float64 checks (within 1 ULP), at N <= 64 only.

Each times loss and gradient together; peak extra memory is the resident set's growth while the
result is alive (the float64 gradient alone is twice the float32 logits).

test_reference_check times what a float32 check of the sparse loss and its logit gradient asks
of the reference, as conformance/core/expected.py asks it: the float32 logits widened to
float64, evaluate_loss and evaluate_scale (the loss check), evaluate_grad (the gradient and its
conditioning scale) -- side by side with jitted optax value_and_grad, round by round (each
round: optax, the check with evaluate_loss_and_scale in place of the two loss calls, then the
check as timed by pytest-benchmark), so that both see the same machine. Peak memory is the
resident set's growth (and tracemalloc's peak, NumPy's buffers) over the float32 logits, in
units of the float64 logits: the widened logits, the gradient and its scale are 3 of them.

Runs in a process of its own (framework id `reference` in the runner), or in a run of everything.
"""
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np
import pytest

from conformance.bench import machine
from conformance.bench import measure as bm
from conformance.bench.kernels import reference_selected
from conformance.bench.settings import REFERENCE, REFERENCE_CLASSES, REFERENCE_ROWS, settings_for
from reference import registry
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
    if "reference_check_rows" in metafunc.fixturenames:
        settings = settings_for(metafunc.config)
        wanted = reference_selected(settings.frameworks) and "cpu" in settings.devices
        rows = REFERENCE_ROWS[settings.profile] if wanted else ()
        metafunc.parametrize("reference_check_rows", rows, ids=[f"reference-check-N{n}-C{C}" for n in rows])


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


SPARSE = "sparse_softmax_cross_entropy"


def check_call(logits, labels, one_pass=False):
    """A float32 check's expected values of the sparse loss and its logit gradient, as
    conformance/core/expected.py asks the registry: the logits widened to float64 (as64), then
    the loss and its scale, then the gradient and its scale; one_pass asks the loss and its
    scale in one call (registry.evaluate_loss_and_scale)."""
    def evaluate():
        wide = {"logits": logits.astype(np.float64), "labels": labels}
        if one_pass:
            loss, loss_scale = registry.evaluate_loss_and_scale(SPARSE, "exact", wide, {}, "float32")
        else:
            loss = registry.evaluate_loss(SPARSE, "exact", wide, {}, "float32")
            loss_scale = registry.evaluate_scale(SPARSE, "exact", wide, {}, "float32")
        grad, grad_scale = registry.evaluate_grad(SPARSE, "exact", wide, {}, "float32")
        return wide, loss, loss_scale, grad, grad_scale
    return evaluate


def _timed(function) -> float:
    start = time.perf_counter()
    result = function()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def _profiled(function):
    """(result, user and system CPU seconds, tracemalloc's peak) of one call: the arithmetic,
    the kernel's share (page faults of fresh output memory, most of it on a busy VM), and the
    peak of NumPy's buffers (NumPy reports them to tracemalloc) with the result alive."""
    tracemalloc.start()
    try:
        before = os.times()
        result = function()
        after = os.times()
        return result, after.user - before.user, after.system - before.system, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reference_check(reference_check_rows, benchmark, bench_settings):
    n = reference_check_rows
    benchmark.group = f"reference-check|N={n}|C={C}"
    logits, labels = inputs(n, "float32")
    wide_bytes = logits.size * 8
    # the widened logits, gradient and scale (3 x wide_bytes), optax's copy of the logits and its
    # float32 gradient, with a margin
    needed = int(1.2 * (3 * wide_bytes + 2 * logits.nbytes))
    available = machine.mem_available()
    if available is not None and available < needed:
        pytest.skip(f"[memory] a check at N={n} needs about {needed / 2**30:.1f} GiB, "
                    f"{available / 2**30:.1f} available")
    optax = optax_call(logits, labels)
    check, one_pass = check_call(logits, labels), check_call(logits, labels, one_pass=True)
    extra = {name: machine.rss_peak_extra(fn) for name, fn in (("optax", optax), ("check", check))}  # warm-up too
    cpu = {}
    for name, fn in (("optax", optax), ("one_pass", one_pass), ("check", check)):
        result, *cpu[name] = _profiled(fn)
    traced = cpu["check"][2]
    loss, grad = result[1], result[3]  # the check's values against the double-double tier's, on the first rows
    rows = min(n, 8)
    exact = sparse_softmax_cross_entropy_and_grad(logits[:rows].astype(np.float64), labels[:rows], -1, "float64")
    assert np.max(np.abs(loss[:rows] - exact[0])) <= 1e-12 and np.max(np.abs(grad[:rows] - exact[1])) <= 1e-15
    del result, loss, grad, exact
    times = {"optax": [], "one_pass": []}

    def beside():  # untimed by pytest-benchmark, before each of its rounds
        times["optax"].append(_timed(optax))
        times["one_pass"].append(_timed(one_pass))

    benchmark.pedantic(check, setup=beside, rounds=3, iterations=1, warmup_rounds=0)
    median = benchmark.stats.stats.median if benchmark.stats is not None else float("nan")
    medians = {name: statistics.median(values) for name, values in times.items()}
    benchmark.extra_info.update({
        "framework": REFERENCE, "impl": "check", "kind": "reference", "mode": "check", "device": "cpu",
        "device_name": machine.cpu_name(), "dtype": "float32", "N": n, "C": C, "profile": bench_settings.profile,
        "median_s": median, "optax_median_s": medians["optax"], "one_pass_median_s": medians["one_pass"],
        "check_over_optax": median / medians["optax"], "one_pass_over_optax": medians["one_pass"] / medians["optax"],
        "input_bytes": logits.nbytes, "float64_logits_bytes": wide_bytes,
        "peak_extra_bytes": extra["check"] if extra["check"] is not None else "n/a",
        "peak_extra_x_float64_logits": extra["check"] / wide_bytes if extra["check"] is not None else "n/a",
        "optax_peak_extra_bytes": extra["optax"] if extra["optax"] is not None else "n/a",
        "traced_peak_bytes": traced, "traced_peak_x_float64_logits": traced / wide_bytes,
        **{f"{name}_cpu_user_s": user for name, (user, _, _) in cpu.items()},
        **{f"{name}_cpu_system_s": system for name, (_, system, _) in cpu.items()},
        "peak_extra_method": "resident-set high-water mark; tracemalloc (NumPy buffers)",
        "threads": fast_threads(), "mem_total_bytes": _mem_total(),
        "python": platform.python_version(), "numpy": np.__version__,
    })
    assert traced <= 3.1 * wide_bytes  # the widened logits, the gradient and its scale, and row blocks


def fast_threads() -> int:
    from reference.numerics import fast_softmax
    return fast_softmax._threads()


def _mem_total():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
