"""Legacy Keras 2 (the tf-keras package), on TensorFlow."""
from conformance.adapters.native_order import load_triton_first

load_triton_first()  # before TensorFlow's LLVM (native_order.py)
import tf_keras  # noqa: E402

from conformance.adapters.api import Call, Result
from conformance.adapters.keras_common import KerasStyleAdapter, keras_capabilities
from conformance.adapters.tensorflow_adapter import tape_grad, tf_device, tf_devices, to_result, to_tensor


class TfKerasAdapter(KerasStyleAdapter):
    framework = "tf_keras"
    losses = tf_keras.losses
    packages = ("tf-keras", "tensorflow")
    classes_without_axis = ("SparseCategoricalCrossentropy",)
    capabilities = keras_capabilities({
        "sigmoid_cross_entropy": "exact",
        "binary_crossentropy": "tf_keras_eps_log",
        "softmax_cross_entropy": "exact",
        "categorical_crossentropy": "keras_normalize_clip",
        "sparse_softmax_cross_entropy": "exact",
        "sparse_categorical_crossentropy": "keras_clip_normalize",
        "mean_squared_error": "exact",
    })

    devices = staticmethod(tf_devices)

    def reduction_argument(self, reduction):
        names = tf_keras.losses.Reduction
        return {"none": names.NONE, "sum": names.SUM, "mean": names.SUM_OVER_BATCH_SIZE}[reduction]

    def constant(self, values, dtype):
        import numpy as np

        return to_tensor(np.asarray(values, np.float64), dtype)

    def _function(self, op, labels, options, dtype):
        import tensorflow as tf

        return self.function(op, labels, options, dtype, lambda t: tf.expand_dims(t, -1))

    def loss(self, op, prediction, labels, options, dtype, device):
        with tf_device(device):
            x, y = to_tensor(prediction, dtype), to_tensor(labels, dtype)
            return to_result(self._function(op, y, options, dtype)(x))

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        from conformance.adapters.tensorflow_adapter import forward_jvp

        with tf_device(device):
            x, y = to_tensor(prediction, dtype), to_tensor(labels, dtype)
            return to_result(forward_jvp(self._function(op, y, options, dtype), x, direction))

    def gradient(self, call: Call) -> Result:
        with tf_device(call.device):
            x, y = to_tensor(call.prediction, call.dtype), to_tensor(call.labels, call.dtype)
            if call.wrt == "labels":
                return to_result(tape_grad(lambda t: self._function(call.op, t, call.options, call.dtype)(x), y,
                                           call.cotangent)[1])
            return to_result(tape_grad(self._function(call.op, y, call.options, call.dtype), x, call.cotangent)[1])
