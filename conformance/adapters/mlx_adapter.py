"""MLX: mlx.nn.losses, run eagerly and under mx.compile, differentiated with mx.grad, mx.vjp
and mx.jvp.

Its defaults differ from PyTorch's, so every call passes them explicitly: cross_entropy and
nll_loss default to reduction "none", binary_cross_entropy to with_logits=True and "mean".
MLX has no ignore_index and no class weights; `weights` are per-loss weights.
"""
from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import mlx.nn.losses as losses
import numpy as np

from conformance.adapters.api import Adapter, Call, Capability, Result, as_float, results_in_modes

DTYPES = {"float16": mx.float16, "bfloat16": mx.bfloat16, "float32": mx.float32, "float64": mx.float64}
MODES = ("eager", "compile")


def mlx_devices() -> tuple[str, ...]:
    # MLX's GPU on Linux is its CUDA backend (mlx[cuda]); Metal exists on macOS only
    return ("cpu", "cuda") if mx.is_available(mx.gpu) and not mx.metal.is_available() else ("cpu",)


def _device(device: str):
    return mx.gpu if device == "cuda" else mx.cpu


def to_array(array, dtype):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return mx.array(array.astype(np.int64))
    # mx.array turns a float64 NumPy array into float32 unless it is told the dtype
    array = as_float(array)
    return mx.array(array, dtype=DTYPES[str(array.dtype)]).astype(DTYPES[dtype])


def to_result(array, device, mode):
    dtype = str(array.dtype).removeprefix("mlx.core.")
    wide = array if array.dtype == mx.float64 else array.astype(mx.float32)
    return Result(np.asarray(wide).astype(np.float64), dtype, device, mode)


def _weights(options, dtype):
    weight = options.get("sample_weight")
    return None if weight is None else to_array(np.asarray(weight, np.float64), dtype)


def wide(values, dtype):
    """float64 values (a cotangent, a direction) as an MLX array of dtype."""
    return mx.array(np.asarray(values, np.float64), dtype=mx.float64).astype(dtype)


def sigmoid_cross_entropy(x, y, options, weights):
    return losses.binary_cross_entropy(x, y, weights=weights, with_logits=True, reduction=options["reduction"])


def binary_crossentropy(p, y, options, weights):
    return losses.binary_cross_entropy(p, y, weights=weights, with_logits=False, reduction=options["reduction"])


def softmax_cross_entropy(z, y, options, weights):
    return losses.cross_entropy(z, y, weights=weights, axis=options.get("axis", -1),
                                label_smoothing=options.get("label_smoothing") or 0.0, reduction=options["reduction"])


def mean_squared_error(a, y, options, weights):
    return losses.mse_loss(a, y, reduction=options["reduction"])


def nll_of_log_softmax(z, labels, options, weights):
    axis = options.get("axis", -1)
    return losses.nll_loss(nn.log_softmax(z, axis=axis), labels, axis=axis, reduction=options["reduction"])


def dense_of_log_softmax(z, y, options, weights):
    loss = -mx.sum(y * nn.log_softmax(z, axis=options.get("axis", -1)), axis=options.get("axis", -1))
    return {"none": loss, "sum": mx.sum(loss), "mean": mx.mean(loss)}[options["reduction"]]


class MlxAdapter(Adapter):
    framework = "mlx"
    packages = ("mlx", "mlx-cpu")
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"sample_weight"}, modes=MODES),
        "binary_crossentropy": Capability(binary_crossentropy, variant="torch_clamp_log", options={"sample_weight"},
                                          modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, options={"sample_weight", "label_smoothing"},
                                            modes=MODES),
        "sparse_softmax_cross_entropy": Capability(softmax_cross_entropy, options={"sample_weight", "label_smoothing"},
                                                   modes=MODES),
        "mean_squared_error": Capability(mean_squared_error, modes=MODES),
    }

    devices = staticmethod(mlx_devices)

    def _function(self, op, options, dtype):
        implementation = self.capability(op).implementation
        options = {**options, "reduction": options.get("reduction", "none")}
        weights = _weights(options, dtype)
        return lambda x, y: implementation(x, y, options, weights)

    def _both_modes(self, fn, args, device):
        """fn(*args) eagerly and under mx.compile, on the device's stream, each mode evaluated
        (MLX is lazy) and judged on its own."""
        def compute(mode):
            with mx.stream(_device(device)):
                out = fn(*args) if mode == "eager" else mx.compile(fn)(*args)
                mx.eval(out)
            return to_result(out, device, mode)
        return results_in_modes(MODES, compute)

    def _inputs(self, prediction, labels, dtype):
        return to_array(prediction, dtype), to_array(labels, dtype)

    def loss(self, op, prediction, labels, options, dtype, device):
        return self._both_modes(self._function(op, options, dtype), self._inputs(prediction, labels, dtype), device)

    def gradient(self, call: Call) -> Result:
        fn = self._function(call.op, call.options, call.dtype)
        argnum = 1 if call.wrt == "labels" else 0
        x, y = self._inputs(call.prediction, call.labels, call.dtype)
        if call.cotangent is None:
            derivative = mx.grad(lambda a, b: mx.sum(fn(a, b)), argnums=argnum)
        else:
            def derivative(a, b):
                primals = [a, b]
                out = fn(a, b)
                seed = wide(call.cotangent, out.dtype)
                pulled = mx.vjp(lambda t: fn(*(t if i == argnum else p for i, p in enumerate(primals))),
                                [primals[argnum]], [seed])[1]
                return pulled[0]
        return self._both_modes(derivative, (x, y), call.device)

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        fn = self._function(op, options, dtype)
        x, y = self._inputs(prediction, labels, dtype)
        tangent = wide(direction, x.dtype)

        def forward(a, b):
            return mx.jvp(lambda t: fn(t, b), [a], [tangent])[1][0]

        return self._both_modes(forward, (x, y), device)

class MlxComposed(MlxAdapter):
    composition = "nn.log_softmax, then losses.nll_loss (dense labels: -sum(y * nn.log_softmax))"
    capabilities = {"sparse_softmax_cross_entropy": Capability(nll_of_log_softmax, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, modes=MODES)}
