"""JAX's benchmark kernels: what `nox -s benchmark` times for the jax adapter
(conformance/adapters/jax_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from conformance.adapters.api import Adapter
from conformance.adapters.jax_adapter import jax_devices, sparse_softmax_cross_entropy, to_array
from conformance.bench.contract import (BenchKernel, GpuProbes, NoDevice, Problem, Timed, first_call, loss_and_grad,
                                        requested_threads, rotating)


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    prepare_for_benchmarks()
    fused = BenchKernel("fused", "optax.softmax_cross_entropy_with_integer_labels, jax.jit",
                        lambda p: jax_timed(fused_loss, p), gpu=GPU_PROBES)
    naive = BenchKernel("naive", "-take_along_axis(log(jax.nn.softmax(z)), label), jax.jit",
                        lambda p: jax_timed(naive_loss, p), gpu=GPU_PROBES)
    return {"fused": fused, "naive": naive}


def prepare_for_benchmarks():
    """Before JAX's backend starts: no GPU preallocation (75% of the GPU otherwise, which
    starves every other allocator), and a single-threaded XLA CPU where one thread is asked
    for (XLA takes no other count)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    flags = os.environ.get("XLA_FLAGS", "")
    if requested_threads() == 1 and SINGLE_THREAD_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_FLAG}".strip()


SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"


def fused_loss(x, y):
    return sparse_softmax_cross_entropy(x, y, {})


def naive_loss(x, y):
    return -jnp.take_along_axis(jnp.log(jax.nn.softmax(x, axis=-1)), y[:, None], axis=-1)[:, 0]


def jax_timed(loss_fn, problem: Problem) -> Timed:
    """loss_fn(logits, labels) under jax.jit(...).lower().compile() (compile time kept apart);
    forward+backward through jax.value_and_grad of the summed loss."""
    if problem.device not in jax_devices():
        raise NoDevice("JAX sees no GPU")
    # JAX computes in 32 bits unless told otherwise, and so do its users: the 64-bit mode that
    # this module turns on for the float64 checks is kept to float64 kernels (it changes what
    # some libraries compute, keras' one-hot for one)
    x64 = problem.dtype == "float64"
    with jax.enable_x64(x64):
        timed = _compiled(loss_fn, problem, x64)
    if problem.device == "cuda":
        timed.info["device_name"] = jax.devices("gpu")[0].device_kind
    if timed.xla_bytes is not None:
        # XLA's CPU client reuses buffers that the resident set cannot see; its compiled plan can
        timed.memory_probe = lambda call: timed.xla_bytes
        timed.memory_method = "XLA memory_analysis of the compiled call (temp + output)"
    return timed


def _compiled(loss_fn, problem, x64):
    target = jax.devices("gpu" if problem.device == "cuda" else "cpu")[0]
    labels = problem.labels.astype(np.int64 if x64 else np.int32)
    xs = [to_array(problem.logits, problem.dtype, problem.device) for _ in range(problem.copies)]
    ys = [jax.device_put(labels, target) for _ in range(problem.copies)]
    if problem.mode == "fwd":
        def f(x, y):
            return (loss_fn(x, y),)
    else:
        def total(x, y):
            loss = loss_fn(x, y)
            return jnp.sum(loss), loss

        value_and_grad = jax.value_and_grad(total, has_aux=True)

        def f(x, y):
            (_, loss), grad = value_and_grad(x, y)
            return loss, grad

    start = time.perf_counter()
    compiled = jax.jit(f).lower(xs[0], ys[0]).compile()
    compile_s = time.perf_counter() - start
    take = rotating(xs, ys)
    block = jax.block_until_ready

    def call():
        return block(compiled(*take()))

    def loss_grad(out):
        return loss_and_grad([np.asarray(a if a.dtype == jnp.float64 else a.astype(jnp.float32)) for a in out])

    single = SINGLE_THREAD_FLAG in os.environ.get("XLA_FLAGS", "")
    xla_cpu = f"one thread ({SINGLE_THREAD_FLAG})" if single else "XLA's own pool over all cpus"
    timed = Timed(call, loss_grad, lambda out: _placement(out[-1]), compile_s=compile_s,
                  info={"threads": {"xla_cpu": xla_cpu}, "label_dtype": str(ys[0].dtype)})
    _, first = first_call(call)
    timed.first_call_s = compile_s + first
    try:
        analysis = compiled.memory_analysis()
        timed.xla_bytes = int(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend offers it
        timed.xla_bytes = None
    return timed


def _placement(array):
    return "cuda" if next(iter(array.devices())).platform == "gpu" else "cpu"


def _gpu_copy(nbytes):
    src = jax.device_put(jnp.ones(nbytes // 4, jnp.float32), jax.devices("gpu")[0])
    negate = jax.jit(jnp.negative).lower(src).compile()
    return (lambda: jax.block_until_ready(negate(src))), (lambda: None)


GPU_PROBES = GpuProbes(_gpu_copy, "jax jit negative (one read, one write)")
