"""PaddlePaddle: paddle.nn.functional losses, run in dynamic graph mode and as a static
graph (paddle.jit.to_static with full_graph=True), differentiated with paddle.grad.

F.cross_entropy is four ops in one: soft_label=True takes dense labels, and use_softmax=False
takes probabilities instead of logits (the negative log-likelihood of the label's
probability). Its CPU kernels exist in float32 and float64 only. Paddle runs in a process of
its own: its native library crashes when it is loaded after TensorFlow's.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from conformance.adapters.api import (Adapter, Call, Capability, NotOffered, Result, as_float, elementwise_reduce,
                                      options_key, results_in_modes)

MODES = ("eager", "static")
DTYPES = {"cpu": ("float32", "float64"), "cuda": ("float16", "bfloat16", "float32", "float64")}


def paddle_devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() else ("cpu",)


def _place(device: str):
    return paddle.CUDAPlace(0) if device == "cuda" else paddle.CPUPlace()


def to_tensor(array, dtype, device, requires_grad=False):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return paddle.to_tensor(array.astype(np.int64), place=_place(device))
    tensor = paddle.to_tensor(as_float(array), place=_place(device)).astype(dtype)
    tensor.stop_gradient = not requires_grad
    return tensor


def to_result(tensor, mode):
    dtype = str(tensor.dtype).removeprefix("paddle.")
    device = "cuda" if "gpu" in str(tensor.place).lower() else "cpu"
    return Result(tensor.astype("float64").numpy(), dtype, device, mode)


def _optional(name, x, options):
    value = options.get(name)
    return None if value is None else paddle.to_tensor(np.asarray(value), place=x.place).astype(x.dtype)


def _reduction(options):
    return options.get("reduction", "none")


def sigmoid_cross_entropy(x, y, options):
    return F.binary_cross_entropy_with_logits(x, y, weight=_optional("sample_weight", x, options),
                                              reduction=_reduction(options),
                                              pos_weight=_optional("pos_weight", x, options))


def binary_crossentropy(p, y, options):
    return F.binary_cross_entropy(p, y, weight=_optional("sample_weight", p, options), reduction=_reduction(options))


def _cross_entropy(z, y, options, soft_label, use_softmax):
    axis = options.get("axis", -1)
    ignore_index = options.get("ignore_index")
    loss = F.cross_entropy(z, y, weight=_optional("weight", z, options), soft_label=soft_label, axis=axis,
                           use_softmax=use_softmax, reduction=_reduction(options),
                           ignore_index=-100 if ignore_index is None else ignore_index,
                           label_smoothing=options.get("label_smoothing") or 0.0)
    if _reduction(options) == "none" and soft_label:
        loss = paddle.squeeze(loss, axis=axis)  # dense labels keep the class axis, of size 1
    return loss


def softmax_cross_entropy(z, y, options):
    return _cross_entropy(z, y, options, soft_label=True, use_softmax=True)


def sparse_softmax_cross_entropy(z, labels, options):
    return _cross_entropy(z, labels, options, soft_label=False, use_softmax=True)


def categorical_crossentropy(p, y, options):
    return _cross_entropy(p, y, options, soft_label=True, use_softmax=False)


def sparse_categorical_crossentropy(p, labels, options):
    return _cross_entropy(p, labels, options, soft_label=False, use_softmax=False)


def mean_squared_error(a, y, options):
    return F.mse_loss(a, y, reduction=_reduction(options))


def nll_of_log_softmax(z, labels, options):
    axis = options.get("axis", -1)
    log_p = F.log_softmax(z, axis=axis)
    if log_p.ndim > 1 and axis % log_p.ndim != 1:  # F.nll_loss wants the classes second
        log_p = paddle.moveaxis(log_p, axis, 1)
    return F.nll_loss(log_p, labels, reduction=_reduction(options))


def dense_of_log_softmax(z, y, options):
    axis = options.get("axis", -1)
    return elementwise_reduce(-paddle.sum(y * F.log_softmax(z, axis=axis), axis=axis), _reduction(options),
                              paddle.sum, paddle.mean)


# Every static function made in this process, by implementation and options. They live as long
# as the process because Paddle caches compiled programs and their scopes by id(): a program
# freed and a new one allocated at the same address ran the old program on the new inputs (an
# intermittent EnforceNotMet in cross_entropy_with_softmax). One function per op and options
# also lets Paddle reuse its programs across checks of the same shape and dtype.
_STATIC_FUNCTIONS: dict[tuple, object] = {}


def _static(implementation, options: dict):
    """implementation(x, y, options) as one static program (paddle.jit.to_static traces it whole,
    no graph breaks), made once per implementation and options."""
    key = (implementation, options_key(options))
    if key not in _STATIC_FUNCTIONS:
        def loss_of(x, y):
            return implementation(x, y, options)

        _STATIC_FUNCTIONS[key] = paddle.jit.to_static(loss_of, full_graph=True)
    return _STATIC_FUNCTIONS[key]


class PaddleAdapter(Adapter):
    framework = "paddle"
    packages = ("paddlepaddle",)
    own_process = True  # libpaddle.so crashes (SIGSEGV) when it is loaded after TensorFlow's libraries
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"sample_weight", "pos_weight"},
                                            dtypes=DTYPES, modes=MODES),
        "binary_crossentropy": Capability(binary_crossentropy, variant="torch_clamp_log", options={"sample_weight"},
                                          dtypes=DTYPES, modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, options={"label_smoothing", "weight"},
                                            dtypes=DTYPES, modes=MODES),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy,
                                                   options={"label_smoothing", "weight", "ignore_index"},
                                                   dtypes=DTYPES, modes=MODES),
        "categorical_crossentropy": Capability(categorical_crossentropy, dtypes=DTYPES, modes=MODES),
        "sparse_categorical_crossentropy": Capability(sparse_categorical_crossentropy, options={"ignore_index"},
                                                      dtypes=DTYPES, modes=MODES),
        "mean_squared_error": Capability(mean_squared_error, dtypes=DTYPES, modes=MODES),
    }

    devices = staticmethod(paddle_devices)

    def _each_mode(self, op, options, compute):
        """compute(loss function) with the loss run eagerly, then as a static program (whose
        backward, as in training, is the static program's own)."""
        implementation = self.capability(op).implementation

        def loss_of(x, y):
            return implementation(x, y, options)

        return results_in_modes(MODES, lambda mode: to_result(
            compute(loss_of if mode == "eager" else _static(implementation, options)), mode))

    def loss(self, op, prediction, labels, options, dtype, device):
        x, y = to_tensor(prediction, dtype, device), to_tensor(labels, dtype, device)
        return self._each_mode(op, options, lambda loss_of: loss_of(x, y))

    def gradient(self, call: Call) -> Result:
        on_labels = call.wrt == "labels"
        x = to_tensor(call.prediction, call.dtype, call.device, not on_labels)
        y = to_tensor(call.labels, call.dtype, call.device, on_labels)

        def derivative(loss_of):
            out = loss_of(x, y)
            seed = None if call.cotangent is None else paddle.to_tensor(np.asarray(call.cotangent), place=out.place)
            total, seed = (paddle.sum(out), None) if seed is None else (out, seed.astype(out.dtype))
            (grad,) = paddle.grad(total, y if on_labels else x, grad_outputs=seed, allow_unused=True)
            if grad is None:  # the loss kernels (cross_entropy, bce) take their labels as constants
                raise NotOffered(f"paddle does not differentiate {call.op} with respect to its labels")
            return grad

        return self._each_mode(call.op, call.options, derivative)

class PaddleComposed(PaddleAdapter):
    composition = "F.log_softmax, then F.nll_loss (dense labels: -sum(y * F.log_softmax))"
    capabilities = {"sparse_softmax_cross_entropy": Capability(nll_of_log_softmax, dtypes=DTYPES, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, dtypes=DTYPES, modes=MODES)}
