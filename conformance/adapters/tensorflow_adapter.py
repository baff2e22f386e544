"""TensorFlow's fused tf.nn kernels, run eagerly, in tf.function and in tf.function(jit_compile=True).

A training step runs in tf.function (a graph, Grappler's rewrites) and often with XLA, which
fuses and rewrites the loss and its gradient as a whole: each is a mode, and a check passes only
when every mode does. Each loss, gradient or forward-mode derivative is traced once per op,
options, quantity and dtype (reduce_retracing keeps new shapes from retracing each time).
"""
import os
from typing import Any, Hashable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no cuInit "error" where there is no GPU

import numpy as np

from conformance.adapters.native_order import load_triton_first

load_triton_first()  # before TensorFlow's LLVM (native_order.py)
import tensorflow as tf  # noqa: E402

from conformance.adapters import compiles  # noqa: E402
from conformance.adapters.api import (Adapter, Call, Capability, NotOffered, Result, as_float, elementwise_reduce,
                                      options_key, results_in_modes)
from conformance.adapters.kernel_modules import moved_to_bench

DTYPES = {"float16": tf.float16, "bfloat16": tf.bfloat16, "float32": tf.float32, "float64": tf.float64}


def tf_device(device):
    return tf.device("/GPU:0" if device == "cuda" else "/CPU:0")


def tf_devices():
    return ("cpu", "cuda") if tf.config.list_physical_devices("GPU") else ("cpu",)


def to_tensor(array, dtype):
    """A tensor of the dtype under test (integer labels stay int64)."""
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return tf.constant(array, dtype=tf.int64)
    return tf.cast(tf.constant(as_float(array)), DTYPES[dtype])


def to_result(tensor):
    device = "cuda" if "GPU" in tensor.device.upper() else "cpu"
    return Result(tf.cast(tensor, tf.float64).numpy(), tensor.dtype.name, device)


MODES = ("eager", "function", "xla")
_GRAPHS: dict[tuple[Hashable, str], Any] = {}  # (what is computed, mode) -> its tf.function


def in_modes(key, body, *tensors, modes=MODES):
    """body(*tensors) eagerly, in tf.function and in tf.function(jit_compile=True), each traced
    once per key; the eager Result first, the others attached."""
    def compute(mode):
        if mode == "eager":
            return to_result(body(*tensors))
        if (key, mode) not in _GRAPHS:
            _GRAPHS[(key, mode)] = tf.function(body, jit_compile=mode == "xla", reduce_retracing=True)
        graph = _GRAPHS[(key, mode)]
        return to_result(compiles.counted(mode, graph.experimental_get_tracing_count, lambda: graph(*tensors)))
    return results_in_modes(modes, compute)


def tape_grad(fn, x, cotangent=None):
    """d sum(fn(x)) / dx through tf.GradientTape, or the vector-Jacobian product with a
    cotangent of fn(x)'s shape; returns (loss, grad)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = fn(x)
        total = tf.reduce_sum(out)
    if cotangent is None:
        return total, tape.gradient(total, x)
    return total, tape.gradient(out, x, output_gradients=tf.cast(cotangent, out.dtype))


def forward_jvp(fn, x, direction):
    """d fn(x) along direction through tf.autodiff.ForwardAccumulator."""
    with tf.autodiff.ForwardAccumulator(x, tf.cast(direction, x.dtype)) as accumulator:
        out = fn(x)
    tangent = accumulator.jvp(out)
    if tangent is None:
        raise NotOffered("TensorFlow's forward mode does not reach this loss")
    return tf.convert_to_tensor(tangent)  # a gather's tangent may come back as IndexedSlices


def sigmoid_cross_entropy(x, y, options):
    if options.get("pos_weight") is not None:
        pos_weight = tf.constant(np.asarray(options["pos_weight"], np.float64), dtype=x.dtype)  # a list too
        return tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=x, pos_weight=pos_weight)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x)


def softmax_cross_entropy(z, y, options):
    return tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z, axis=options.get("axis", -1))


def sparse_softmax_cross_entropy(z, labels, options):
    if options.get("axis", -1) not in (-1, z.shape.rank - 1):
        raise NotOffered("tf.nn.sparse_softmax_cross_entropy_with_logits takes classes last only")
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z)


def linear_cross_entropy(h, labels, options, weight, bias=None):
    """The naive composition a TensorFlow LM head writes: the logits, then the fused tf.nn loss."""
    logits = tf.matmul(h, weight, transpose_b=True)
    if bias is not None:
        logits = logits + bias
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


TENSORS = ("linear_weight", "linear_bias")  # an op's further tensors: arguments, never constants


def gather_of_log_softmax(z, labels, options):
    return -tf.gather(tf.nn.log_softmax(z, axis=-1), labels, axis=-1, batch_dims=labels.shape.rank)


def dense_of_log_softmax(z, y, options):
    return -tf.reduce_sum(y * tf.nn.log_softmax(z, axis=-1), axis=-1)


class TensorflowAdapter(Adapter):
    framework = "tensorflow"
    packages = ("tensorflow",)
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"pos_weight"}, modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, modes=MODES),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy, modes=MODES),
        "linear_cross_entropy": Capability(linear_cross_entropy, options={"linear_bias"}, modes=MODES),
    }


    devices = staticmethod(tf_devices)

    def _function(self, op, labels, options, tensors=()):
        implementation = self.capability(op).implementation
        reduction = options.get("reduction", "none")
        return lambda x: elementwise_reduce(implementation(x, labels, options, *tensors), reduction, tf.reduce_sum,
                                            tf.reduce_mean)

    @staticmethod
    def _split(options, dtype):
        """(the options a function closes over, an op's further tensors as its arguments)."""
        tensors = [to_tensor(options[name], dtype) for name in TENSORS if options.get(name) is not None]
        return {k: v for k, v in options.items() if k not in TENSORS}, tensors

    def _traced(self, op, options, dtype, x, y, *what):
        """The key of one traced function: ranks included, so that reduce_retracing relaxes the
        sizes only (the functions read their inputs' ranks)."""
        return (type(self).__name__, op, options_key(options), dtype, x.shape.rank, y.shape.rank, *what)

    def loss(self, op, prediction, labels, options, dtype, device):
        with tf_device(device):
            x, y = to_tensor(prediction, dtype), to_tensor(labels, dtype)
            options, tensors = self._split(options, dtype)
            return in_modes(self._traced(op, options, dtype, x, y, "loss", device, len(tensors)),
                            lambda x, y, *t: self._function(op, y, options, t)(x), x, y, *tensors,
                            modes=self.capability(op).modes)

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        with tf_device(device):
            x, y = to_tensor(prediction, dtype), to_tensor(labels, dtype)
            v = tf.cast(tf.constant(direction), x.dtype)
            return in_modes(self._traced(op, options, dtype, x, y, "jvp", device),
                            lambda x, y, v: forward_jvp(self._function(op, y, options), x, v), x, y, v,
                            modes=self.capability(op).modes)

    def gradient(self, call: Call) -> Result:
        with tf_device(call.device):
            x, y = to_tensor(call.prediction, call.dtype), to_tensor(call.labels, call.dtype)
            options, tensors = self._split(call.options, call.dtype)
            c = () if call.cotangent is None else (tf.constant(np.asarray(call.cotangent, np.float64)),)
            count = len(tensors)
            if call.wrt == "labels":
                def body(x, y, *c):
                    return tape_grad(lambda t: self._function(call.op, t, options)(x), y, *c)[1]
            elif call.wrt in TENSORS:  # the tensor at its place among the further ones
                where = TENSORS.index(call.wrt)

                def body(x, y, *rest):
                    tensors, c = list(rest[:count]), rest[count:]

                    def of(t):
                        return self._function(call.op, y, options, [*tensors[:where], t, *tensors[where + 1:]])(x)
                    return tape_grad(of, tensors[where], *c)[1]
            else:
                def body(x, y, *rest):
                    return tape_grad(self._function(call.op, y, options, rest[:count]), x, *rest[count:])[1]
            traced = self._traced(call.op, options, call.dtype, x, y, "grad", call.wrt, len(c), call.device, count)
            return in_modes(traced, body, x, y, *tensors, *c, modes=self.capability(call.op).modes)

class TensorflowComposed(TensorflowAdapter):
    composition = "tf.nn.log_softmax, then tf.gather (dense labels: -reduce_sum(y * log_softmax))"
    capabilities = {"sparse_softmax_cross_entropy": Capability(gather_of_log_softmax, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, modes=MODES)}


# the benchmark helpers plug-ins imported from here, now in conformance/bench/builtin/tensorflow_kernels.py
__getattr__ = moved_to_bench(__name__, ("tf_timed", "tf_kernel", "prepare_for_benchmarks", "GPU_PROBES"))
