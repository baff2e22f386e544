"""Legacy Keras 2's (tf-keras) benchmark kernels, in tf.function as TensorFlow's own
(see conformance/adapters/tf_keras_adapter.py)."""
from __future__ import annotations

from typing import Any

from conformance.adapters.native_order import load_triton_first

load_triton_first()  # before TensorFlow's LLVM (native_order.py), as the adapter does
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from conformance.bench.builtin.tensorflow_kernels import prepare_for_benchmarks, tf_kernel  # noqa: E402
from conformance.bench.contract import BenchKernel, with_info  # noqa: E402


def kernels(adapter: Any) -> dict[str, BenchKernel]:
    prepare_for_benchmarks()
    K = tf_keras.backend
    info = {"framework_version": f"{tf_keras.__version__} (tensorflow {tf.__version__})"}

    def fused(x, y):
        return adapter.losses.sparse_categorical_crossentropy(y, x, from_logits=True)

    def naive(x, y):
        return -tf.gather(K.log(K.softmax(x)), y, axis=1, batch_dims=1)

    return {
        "fused": with_info(tf_kernel("fused", "tf_keras.losses.sparse_categorical_crossentropy(from_logits=True) "
                                     "in tf.function", fused), info),
        "naive": with_info(tf_kernel("naive", "-tf.gather(K.log(K.softmax(z)), label) in tf.function", naive),
                           info),
    }
