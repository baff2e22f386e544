"""Keras 3 on one backend per process, chosen by KERAS_BACKEND before keras is imported.

One class per backend (one framework id each): the backend decides how a tensor comes back
to NumPy, how a call runs (jax: jit-compiled and eager; tensorflow: eager, tf.function and
XLA) and how it is differentiated.
"""
import os
from typing import Any, Callable

import numpy as np

from conformance.adapters.api import BASIC_REDUCTIONS, Call, Capability, NotOffered, Result, Unavailable, as_float
from conformance.adapters.keras_common import KerasStyleAdapter, keras_capabilities
from conformance.adapters.native_order import load_triton_first
from reference.dtypes import FLOAT_DTYPES

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
REDUCTIONS = BASIC_REDUCTIONS + ("weighted_mean",)
LINEAR_TENSORS = ("linear_weight", "linear_bias")  # linear_cross_entropy's head, among the options


class KerasAdapter(KerasStyleAdapter):
    """Keras 3 on one backend; the subclasses below are the four framework ids."""

    modes: tuple[str, ...] = ("eager",)
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    differentiable = True

    def __init__(self):
        requested = os.environ.get("KERAS_BACKEND", "tensorflow")
        if self.keras_backend != requested:
            backend = self.keras_backend
            raise Unavailable(f"keras-{backend} needs its own process with KERAS_BACKEND={backend}")
        self.prepare_backend()
        load_triton_first()  # before a backend's LLVM (TensorFlow's; native_order.py)
        import keras

        if keras.config.backend() != self.keras_backend:
            raise Unavailable(f"keras reports backend {keras.config.backend()!r}, not {self.keras_backend!r}")
        self.keras = keras
        self.losses = keras.losses
        self.capabilities = keras_capabilities({**VARIANTS, **BACKEND_VARIANTS.get(self.keras_backend, {})}, REDUCTIONS,
                                               self.dtypes, self.modes, self.differentiable)
        if self.capabilities["sparse_softmax_cross_entropy"].variant == "exact":  # the head's loss
            self.capabilities["linear_cross_entropy"] = Capability(
                "keras.ops.matmul, then sparse_categorical_crossentropy(from_logits=True)", options={"linear_bias"},
                reductions=REDUCTIONS, dtypes=self.dtypes, modes=self.modes, differentiable=self.differentiable)

    def prepare_backend(self):
        """Anything the backend needs before keras is imported."""

    def composed(self):
        if self.composition:
            return None
        return type("Composed" + type(self).__name__, (ComposedKeras, type(self)), {})()

    def environment(self):
        return {**super().environment(), "backend": self.keras.config.backend()}

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

    def to_result(self, out) -> Result:
        out = np.asarray(out)
        return Result(out.astype(np.float64), str(out.dtype), "cpu")

    def evaluate(self, fn, x) -> Result:
        return self.to_result(fn(x))

    def differentiate(self, fn, x, cotangent=None) -> Result:
        """d sum(fn(x)) / dx through the backend's autodiff (the vector-Jacobian product with
        a cotangent of fn(x)'s shape when one is given)."""
        raise NotImplementedError

    def function(self, op, y, options, dtype, expand):
        """The Keras loss; linear_cross_entropy as a Keras user writes an LM head: the logits by
        keras.ops.matmul (and the bias), then the sparse loss from logits."""
        if op != "linear_cross_entropy":
            return super().function(op, y, options, dtype, expand)
        self.capability(op)
        ops = self.keras.ops
        head = {name: self._tensor(value, dtype) if isinstance(value, np.ndarray) else value
                for name, value in options.items() if name in LINEAR_TENSORS and value is not None}
        loss = super().function("sparse_softmax_cross_entropy", y,
                                {k: v for k, v in options.items() if k not in LINEAR_TENSORS}, dtype, expand)

        def fn(x):
            logits = ops.matmul(x, ops.transpose(head["linear_weight"]))
            return loss(logits + head["linear_bias"] if "linear_bias" in head else logits)
        return fn

    def _setup(self, op, prediction, labels, options, dtype):
        """x, y, and loss_of(labels tensor, **tensors in place of the options' arrays) -> fn(x)."""
        x, y = self._tensor(prediction, dtype), self._tensor(labels, dtype)
        expand = lambda t: self.keras.ops.expand_dims(t, -1)  # noqa: E731
        return x, y, lambda labels_tensor, **given: self.function(op, labels_tensor, {**options, **given}, dtype,
                                                                  expand)

    def _device(self, device):
        return self.keras.device("gpu:0" if device == "cuda" else "cpu:0")

    def loss(self, op, prediction, labels, options, dtype, device):
        with self._device(device):
            x, y, loss_of = self._setup(op, prediction, labels, options, dtype)
            return self.evaluate(loss_of(y), x)

    def forward(self, fn, x, direction) -> Result:
        """d fn(x) along direction through the backend's forward mode."""
        raise NotOffered(f"{self.framework}: no forward mode here")

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        with self._device(device):
            x, y, loss_of = self._setup(op, prediction, labels, options, dtype)
            return self.forward(loss_of(y), x, direction)

    def gradient(self, call: Call) -> Result:
        with self._device(call.device):
            x, y, loss_of = self._setup(call.op, call.prediction, call.labels, call.options, call.dtype)
            if call.wrt == "labels":  # the loss as a function of the labels
                return self.differentiate(lambda t: loss_of(t)(self._tensor(call.prediction, call.dtype)), y,
                                          call.cotangent)
            if call.wrt in LINEAR_TENSORS:  # the head's weight or bias
                return self.differentiate(lambda t: loss_of(y, **{call.wrt: t})(x),
                                          self._tensor(call.options[call.wrt], call.dtype), call.cotangent)
            return self.differentiate(loss_of(y), x, call.cotangent)


class KerasOnTensorflow(KerasAdapter):
    """Keras on TensorFlow runs a training step in tf.function, with XLA where every op has a
    kernel (Model.compile's jit_compile="auto"): the loss, its gradient and its forward mode
    run eagerly, in tf.function and in tf.function(jit_compile=True), each traced once per op,
    options, dtype and ranks."""
    framework = "keras-tensorflow"
    keras_backend = "tensorflow"
    packages = ("keras", "tensorflow")
    modes = ("eager", "function", "xla")

    def _in_modes(self, what, op, options, dtype, device, body, *tensors):
        from conformance.adapters.api import options_key
        from conformance.adapters.tensorflow_adapter import in_modes
        key = (type(self).__name__, op, options_key(options), dtype, device, *what, *(t.shape.rank for t in tensors))
        return in_modes(key, body, *tensors, modes=self.modes)

    def loss(self, op, prediction, labels, options, dtype, device):
        with self._device(device):
            x, y, loss_of = self._setup(op, prediction, labels, options, dtype)
            return self._in_modes(("loss",), op, options, dtype, device, lambda x, y: loss_of(y)(x), x, y)

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        from conformance.adapters.tensorflow_adapter import forward_jvp
        with self._device(device):
            x, y, loss_of = self._setup(op, prediction, labels, options, dtype)
            v = self.constant(direction, dtype)
            return self._in_modes(("jvp",), op, options, dtype, device,
                                  lambda x, y, v: forward_jvp(loss_of(y), x, v), x, y, v)

    def gradient(self, call: Call) -> Result:
        import tensorflow as tf

        from conformance.adapters.tensorflow_adapter import tape_grad
        with self._device(call.device):
            x, y, loss_of = self._setup(call.op, call.prediction, call.labels, call.options, call.dtype)
            c = () if call.cotangent is None else (tf.constant(np.asarray(call.cotangent, np.float64)),)
            body: Callable[..., Any]  # (x, y, [the wrt tensor,] cotangent...) -> the gradient
            if call.wrt == "labels":  # the loss as a function of the labels
                def body(x, y, *c):
                    return tape_grad(lambda t: loss_of(t)(x), y, *c)[1]
            elif call.wrt in LINEAR_TENSORS:  # the head's weight or bias, an argument of its own
                def body(x, y, t, *c):
                    return tape_grad(lambda u: loss_of(y, **{call.wrt: u})(x), t, *c)[1]
                c = (self._tensor(call.options[call.wrt], call.dtype), *c)
            else:
                def body(x, y, *c):
                    return tape_grad(loss_of(y), x, *c)[1]
            return self._in_modes(("grad", call.wrt, len(c)), call.op, call.options, call.dtype, call.device, body,
                                  x, y, *c)

    def devices(self):
        from conformance.adapters.tensorflow_adapter import tf_devices
        return tf_devices()

    def to_result(self, out):
        from conformance.adapters.tensorflow_adapter import to_result
        return to_result(out)


class ComposedKeras:
    """Mixed into one backend's adapter: softmax cross-entropy from keras.ops building blocks."""

    composition = "keras.ops.log_softmax, then take_along_axis (dense labels: -sum(y * log_softmax))"

    def __init__(self):
        super().__init__()
        self.capabilities = {op: Capability(op, reductions=("none",), dtypes=self.dtypes, modes=self.modes,
                                            differentiable=self.differentiable)
                             for op in ("sparse_softmax_cross_entropy", "softmax_cross_entropy")}

    def function(self, op, y, options, dtype, expand):
        self.capability(op)
        ops = self.keras.ops

        axis = options.get("axis", -1)

        def fn(x):
            log_p = ops.log_softmax(x, axis=axis)
            if op == "sparse_softmax_cross_entropy":
                return -ops.squeeze(ops.take_along_axis(log_p, ops.expand_dims(y, axis), axis=axis), axis)
            return -ops.sum(y * log_p, axis=axis)

        return fn


class KerasOnJax(KerasAdapter):
    framework = "keras-jax"
    keras_backend = "jax"
    packages = ("keras", "jax", "jaxlib")
    modes = ("jit", "eager")

    def prepare_backend(self):
        from conformance.adapters import jax_adapter  # noqa: F401  (enables float64 first)

    def devices(self):
        from conformance.adapters.jax_adapter import jax_devices
        return jax_devices()

    def evaluate(self, fn, x):  # jit-compiled as in a training step, and eagerly
        from conformance.adapters.jax_adapter import jit_and_eager
        return jit_and_eager(None, fn, x)

    def differentiate(self, fn, x, cotangent=None):
        import jax

        from conformance.adapters.jax_adapter import jit_and_eager, vjp
        if cotangent is None:
            return jit_and_eager(None, jax.grad(lambda t: self.keras.ops.sum(fn(t))), x)
        return jit_and_eager(None, lambda t: vjp(fn, (t,), 0, cotangent), x)

    def forward(self, fn, x, direction):
        from conformance.adapters.jax_adapter import forward, jit_and_eager
        return jit_and_eager(None, lambda t: forward(fn, t, direction), x)


class KerasOnTorch(KerasAdapter):
    framework = "keras-torch"
    keras_backend = "torch"
    packages = ("keras", "torch")

    def devices(self):
        from conformance.adapters.torch_adapter import torch_devices
        return torch_devices()

    def to_result(self, out):
        from conformance.adapters.torch_adapter import to_result
        return to_result(out)

    def differentiate(self, fn, x, cotangent=None):
        from conformance.adapters.torch_adapter import autograd
        return self.to_result(autograd(fn, x.requires_grad_(True), cotangent)[1])

    def forward(self, fn, x, direction):
        import torch

        v = torch.as_tensor(direction, dtype=x.dtype, device=x.device)
        return self.to_result(torch.func.jvp(fn, (x,), (v,))[1])


class KerasOnNumpy(KerasAdapter):
    framework = "keras-numpy"
    keras_backend = "numpy"
    packages = ("keras", "numpy")
    dtypes = ("float16", "float32", "float64")
    differentiable = False  # keras-numpy has no automatic differentiation
