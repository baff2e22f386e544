"""JAX with optax's losses, run both jit-compiled (as in training) and eagerly, op by op.

XLA fuses and rewrites a jitted function as a whole, so the two paths can round differently;
both are checked against the reference, and a check passes only when both do.
"""
import os
import time
from typing import Any, Hashable

import jax

from conformance import compile_cache
from conformance.adapters import compiles

jax.config.update("jax_enable_x64", True)  # float64 is otherwise silently float32
compile_cache.configure_jax(jax)  # XLA executables kept across runs

import jax.numpy as jnp
import numpy as np
import optax

from conformance.adapters.api import (Adapter, Call, Capability, Result, as_float, elementwise_reduce, options_key,
                                      results_in_modes)
from conformance.bench.contract import (BenchKernel, GpuProbes, NoDevice, Problem, Timed, first_call, loss_and_grad,
                                        requested_threads, rotating)

DTYPES = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64}


def jax_devices():
    try:
        return ("cpu", "cuda") if jax.devices("gpu") else ("cpu",)
    except RuntimeError:
        return ("cpu",)


def to_array(array, dtype, device):
    array = np.asarray(array)
    target = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    if array.dtype.kind in "iu":
        return jax.device_put(jnp.asarray(array, dtype=jnp.int64), target)
    return jax.device_put(jnp.asarray(as_float(array)).astype(DTYPES[dtype]), target)


def to_result(array, mode=""):
    platform = next(iter(array.devices())).platform
    return Result(np.asarray(array.astype(jnp.float64)), str(array.dtype), "cuda" if platform == "gpu" else "cpu", mode)


# what is computed (op, options, quantity) -> its jax.jit: traced per shape and dtype, compiled once
_JITTED: dict[Hashable, Any] = {}


def jit_and_eager(key, fn, *args):
    """fn(*args) compiled by jax.jit and eagerly, each mode judged on its own. One jitted
    function per key, so a repeated call reuses its compilation (and the persistent cache keeps
    it across runs); key None: fn's constants are the call's own (a fresh jit)."""
    if key is None:
        jitted = jax.jit(fn)
    else:
        if key not in _JITTED:
            _JITTED[key] = jax.jit(fn)
        jitted = _JITTED[key]

    def compute(mode):
        if mode == "eager":
            return to_result(fn(*args))
        return to_result(compiles.counted(mode, jitted._cache_size, lambda: jitted(*args)))
    return results_in_modes(MODES, compute)


def vjp(fn, args, argnum, cotangent):
    """The vector-Jacobian product of fn(*args) with respect to args[argnum]."""
    def of_one(value):
        return fn(*(value if i == argnum else a for i, a in enumerate(args)))

    out, pullback = jax.vjp(of_one, args[argnum])
    return pullback(jnp.asarray(cotangent, out.dtype))[0]


def forward(fn, x, direction):
    """d fn(x) along direction through jax.jvp."""
    return jax.jvp(fn, (x,), (jnp.asarray(direction, x.dtype),))[1]


def sigmoid_cross_entropy(x, y, options):
    return optax.sigmoid_binary_cross_entropy(x, y)


def softmax_cross_entropy(z, y, options):
    return optax.softmax_cross_entropy(z, y, axis=options.get("axis", -1))


def sparse_softmax_cross_entropy(z, labels, options):
    return optax.softmax_cross_entropy_with_integer_labels(z, labels, axis=options.get("axis", -1))


def mean_squared_error(a, y, options):
    return optax.l2_loss(a, y) if options.get("half") else optax.squared_error(a, y)


def linear_cross_entropy(h, labels, options, weight, bias=None):
    """The naive composition a JAX LM head writes: the logits, then optax's loss on them."""
    logits = h @ weight.T if bias is None else h @ weight.T + bias
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def gather_of_log_softmax(z, labels, options):
    return -jnp.take_along_axis(jax.nn.log_softmax(z, axis=-1), labels[..., None], axis=-1)[..., 0]


def dense_of_log_softmax(z, y, options):
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=-1), axis=-1)


MODES = ("jit", "eager")
# Where each input is among a function's arguments: (prediction, labels, an op's further tensors).
ARGUMENTS = {"prediction": 0, "labels": 1, "linear_weight": 2, "linear_bias": 3}


class JaxAdapter(Adapter):
    framework = "jax"
    packages = ("jax", "jaxlib", "optax")
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, modes=MODES),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy, modes=MODES),
        "mean_squared_error": Capability(mean_squared_error, options={"half"}, modes=MODES),
        "linear_cross_entropy": Capability(linear_cross_entropy, options={"linear_bias"}, modes=MODES),
    }

    devices = staticmethod(jax_devices)

    def _function(self, op, options):
        implementation = self.capability(op).implementation
        reduction = options.get("reduction", "none")
        return lambda x, y, *tensors: elementwise_reduce(implementation(x, y, options, *tensors), reduction,
                                                         jnp.sum, jnp.mean)

    @staticmethod
    def _arguments(prediction, labels, options, dtype, device):
        """(prediction, labels, an op's further tensors) as arrays on the device."""
        tensors = [options[name] for name in ("linear_weight", "linear_bias") if options.get(name) is not None]
        return [to_array(a, dtype, device) for a in (prediction, labels, *tensors)]

    def _key(self, op, options, *what):
        """What one jitted function computes: the head's tensors are its arguments, not constants."""
        constants = {name: value for name, value in options.items() if name not in ARGUMENTS}
        return (type(self).__name__, op, options_key(constants), *what)

    def loss(self, op, prediction, labels, options, dtype, device):
        return jit_and_eager(self._key(op, options, "loss"), self._function(op, options),
                             *self._arguments(prediction, labels, options, dtype, device))

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        fn = self._function(op, options)

        def along(v, x, y, *tensors):  # the direction an argument: one compilation for every case
            return forward(lambda t: fn(t, y, *tensors), x, v)
        arguments = self._arguments(prediction, labels, options, dtype, device)
        v = jnp.asarray(direction, arguments[0].dtype)
        return jit_and_eager(self._key(op, options, "jvp"), along, v, *arguments)

    def gradient(self, call: Call) -> Result:
        fn = self._function(call.op, call.options)
        argnum = ARGUMENTS[call.wrt]
        arguments = self._arguments(call.prediction, call.labels, call.options, call.dtype, call.device)
        if call.cotangent is None:
            grad = jax.grad(lambda *args: jnp.sum(fn(*args)), argnums=argnum)
            return jit_and_eager(self._key(call.op, call.options, "grad", argnum), grad, *arguments)

        def product(c, *args):  # the cotangent an argument: one compilation for every case
            return vjp(fn, args, argnum, c)
        return jit_and_eager(self._key(call.op, call.options, "vjp", argnum), product, np.asarray(call.cotangent),
                             *arguments)

    def kernels(self):
        prepare_for_benchmarks()
        fused = BenchKernel("fused", "optax.softmax_cross_entropy_with_integer_labels, jax.jit",
                            lambda p: jax_timed(fused_loss, p), gpu=GPU_PROBES)
        naive = BenchKernel("naive", "-take_along_axis(log(jax.nn.softmax(z)), label), jax.jit",
                            lambda p: jax_timed(naive_loss, p), gpu=GPU_PROBES)
        return {"fused": fused, "naive": naive}


class JaxComposed(JaxAdapter):
    composition = "jax.nn.log_softmax, then take_along_axis (dense labels: -sum(y * log_softmax))"
    capabilities = {"sparse_softmax_cross_entropy": Capability(gather_of_log_softmax, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, modes=MODES)}


# ---------------------------------------------------------------- benchmark kernels

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
