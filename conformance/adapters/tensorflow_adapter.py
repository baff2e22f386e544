"""TensorFlow's fused tf.nn kernels."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from conformance.adapters.base import Adapter, NotOffered, Result, as_float, elementwise_reduce

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


def tape_grad(fn, x):
    """d sum(fn(x)) / dx through tf.GradientTape; returns (loss, grad)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return total, tape.gradient(total, x)


class TensorflowAdapter(Adapter):
    framework = "tensorflow"
    variants = {
        "sigmoid_cross_entropy": "exact",
        "softmax_cross_entropy": "exact",
        "sparse_softmax_cross_entropy": "exact",
    }
    offered_options = {"sigmoid_cross_entropy": ("pos_weight",)}

    def version(self):
        return tf.__version__

    def devices(self):
        return tf_devices()

    def _function(self, op, labels, options):
        axis = options.get("axis", -1)
        reduction = options.get("reduction", "none")

        def fn(x):
            if op == "sigmoid_cross_entropy" and options.get("pos_weight") is not None:
                out = tf.nn.weighted_cross_entropy_with_logits(labels=labels, logits=x, pos_weight=options["pos_weight"])
            elif op == "sigmoid_cross_entropy":
                out = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=x)
            elif op == "softmax_cross_entropy":
                out = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=x, axis=axis)
            else:
                if axis not in (-1, x.shape.rank - 1):
                    raise NotOffered("tf.nn.sparse_softmax_cross_entropy_with_logits takes classes last only")
                out = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x)
            return elementwise_reduce(out, reduction, tf.reduce_sum, tf.reduce_mean)

        return fn

    def loss(self, op, prediction, labels, options, dtype, device):
        with tf_device(device):
            x, y = to_tensor(prediction, dtype), to_tensor(labels, dtype)
            return to_result(self._function(op, y, options)(x))

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
        with tf_device(device):
            x, y = to_tensor(prediction, dtype), to_tensor(labels, dtype)
            if wrt == "labels":
                return to_result(tape_grad(lambda t: self._function(op, t, options)(x), y)[1])
            return to_result(tape_grad(self._function(op, y, options), x)[1])


ADAPTER = TensorflowAdapter
