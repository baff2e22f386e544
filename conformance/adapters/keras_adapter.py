"""Keras 3 on one backend per process, chosen by KERAS_BACKEND before keras is imported."""
import os

import numpy as np

from conformance.adapters.base import NotOffered, Result, Unavailable, as_float
from conformance.adapters.keras_common import KerasStyleAdapter

VARIANTS = {
    "sigmoid_cross_entropy": "exact",
    "binary_crossentropy": "keras3_clip",
    "softmax_cross_entropy": "exact",
    "categorical_crossentropy": "keras_normalize_clip",
    "sparse_softmax_cross_entropy": "exact",
    "sparse_categorical_crossentropy": "keras_normalize_clip",
    "mean_squared_error": "exact",
}
# Where a backend computes something else (keras/src/backend/<backend>/nn.py).
BACKEND_VARIANTS = {
    "numpy": {"sigmoid_cross_entropy": "keras_numpy"},  # sigmoid, then clip, even from logits
    "tensorflow": {"sparse_categorical_crossentropy": "keras_clip_normalize"},  # clip, log, softmax
}


class KerasAdapter(KerasStyleAdapter):
    def __init__(self, backend):
        requested = os.environ.get("KERAS_BACKEND", "tensorflow")
        if backend != requested:
            raise Unavailable(f"keras-{backend} needs its own process with KERAS_BACKEND={backend}")
        if backend == "jax":
            from conformance.adapters import jax_adapter  # noqa: F401  (enables float64 first)
        import keras

        if keras.config.backend() != backend:
            raise Unavailable(f"keras reports backend {keras.config.backend()!r}, not {backend!r}")
        self.keras = keras
        self.losses = keras.losses
        self.backend = backend
        self.framework = "keras-" + backend
        self.autodiff = backend != "numpy"
        self.variants = {**VARIANTS, **BACKEND_VARIANTS.get(backend, {})}
        self.reductions = self.reductions + ("weighted_mean",)
        if backend == "numpy":
            self.dtypes = ("float16", "float32", "float64")

    def version(self):
        return self.keras.__version__

    def environment(self):
        return {**super().environment(), "backend": self.keras.config.backend()}

    def devices(self):
        if self.backend == "tensorflow":
            from conformance.adapters.tensorflow_adapter import tf_devices
            return tf_devices()
        if self.backend == "torch":
            from conformance.adapters.torch_adapter import torch_devices
            return torch_devices()
        if self.backend == "jax":
            from conformance.adapters.jax_adapter import jax_devices
            return jax_devices()
        return ("cpu",)

    def reduction_argument(self, reduction):
        return {"none": None, "sum": "sum", "mean": "sum_over_batch_size",
                "weighted_mean": "mean_with_sample_weight"}[reduction]

    def constant(self, values, dtype):
        return self._tensor(np.asarray(values, np.float64), dtype)

    def class_kwargs(self, dtype):
        return {"dtype": dtype}  # without it the loss class casts to floatx (float32)

    def _tensor(self, array, dtype):
        if array.dtype.kind in "iu":
            return self.keras.ops.convert_to_tensor(array, dtype="int64")
        if dtype in ("float32", "float64"):
            return self.keras.ops.convert_to_tensor(array, dtype=dtype)
        return self.keras.ops.cast(self.keras.ops.convert_to_tensor(as_float(array), dtype="float32"), dtype)

    def _result(self, out):
        if self.backend == "tensorflow":
            from conformance.adapters.tensorflow_adapter import to_result
        elif self.backend == "torch":
            from conformance.adapters.torch_adapter import to_result
        elif self.backend == "jax":
            from conformance.adapters.jax_adapter import to_result
        else:
            out = np.asarray(out)
            return Result(out.astype(np.float64), str(out.dtype), "cpu")
        return to_result(out)

    def _run(self, op, prediction, labels, options, dtype, device, differentiate, wrt="prediction"):
        keras = self.keras
        expand = lambda t: keras.ops.expand_dims(t, -1)  # noqa: E731
        with keras.device("gpu:0" if device == "cuda" else "cpu:0"):
            x, y = self._tensor(prediction, dtype), self._tensor(labels, dtype)
            fn = self.function(op, y, options, dtype, expand)
            if not differentiate:
                if self.backend == "jax":  # jit-compiled as in a training step, and eagerly
                    from conformance.adapters.jax_adapter import jit_and_eager
                    return jit_and_eager(fn, x)
                return self._result(fn(x))
            if wrt == "labels":  # differentiate the labels: the loss as a function of them
                fn, x = (lambda t: self.function(op, t, options, dtype, expand)(self._tensor(prediction, dtype))), y
            if self.backend == "tensorflow":
                from conformance.adapters.tensorflow_adapter import tape_grad
                return self._result(tape_grad(fn, x)[1])
            if self.backend == "torch":
                from conformance.adapters.torch_adapter import autograd
                return self._result(autograd(fn, x.requires_grad_(True))[1])
            if self.backend == "jax":
                import jax
                from conformance.adapters.jax_adapter import jit_and_eager
                return jit_and_eager(jax.grad(lambda t: keras.ops.sum(fn(t))), x)
            raise NotOffered("keras-numpy has no automatic differentiation")

    def loss(self, op, prediction, labels, options, dtype, device):
        return self._run(op, prediction, labels, options, dtype, device, False)

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
        return self._run(op, prediction, labels, options, dtype, device, True, wrt)
