"""JAX with optax's losses, run both jit-compiled (as in training) and eagerly, op by op.

XLA fuses and rewrites a jitted function as a whole, so the two paths can round differently;
both are checked against the reference, and a check passes only when both do.
"""
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
from conformance.adapters.kernel_modules import moved_to_bench

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

class JaxComposed(JaxAdapter):
    composition = "jax.nn.log_softmax, then take_along_axis (dense labels: -sum(y * log_softmax))"
    capabilities = {"sparse_softmax_cross_entropy": Capability(gather_of_log_softmax, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, modes=MODES)}


# the benchmark helpers plug-ins imported from here, now in conformance/bench/builtin/jax_kernels.py
__getattr__ = moved_to_bench(__name__, ("jax_timed", "prepare_for_benchmarks", "GPU_PROBES"))
