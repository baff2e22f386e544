"""TensorFlow's fused tf.nn kernels."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no cuInit "error" where there is no GPU

import numpy as np
import tensorflow as tf

from conformance.adapters.api import Adapter, Capability, NotOffered, Result, as_float, elementwise_reduce

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


def sigmoid_cross_entropy(x, y, options):
    if options.get("pos_weight") is not None:
        return tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=x, pos_weight=options["pos_weight"])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x)


def softmax_cross_entropy(z, y, options):
    return tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z, axis=options.get("axis", -1))


def sparse_softmax_cross_entropy(z, labels, options):
    if options.get("axis", -1) not in (-1, z.shape.rank - 1):
        raise NotOffered("tf.nn.sparse_softmax_cross_entropy_with_logits takes classes last only")
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z)


class TensorflowAdapter(Adapter):
    framework = "tensorflow"
    packages = ("tensorflow",)
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"pos_weight"}),
        "softmax_cross_entropy": Capability(softmax_cross_entropy),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy),
    }

    def version(self):
        return tf.__version__

    def devices(self):
        return tf_devices()

    def _function(self, op, labels, options):
        implementation = self.capability(op).implementation
        reduction = options.get("reduction", "none")
        return lambda x: elementwise_reduce(implementation(x, labels, options), reduction, tf.reduce_sum,
                                            tf.reduce_mean)

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

