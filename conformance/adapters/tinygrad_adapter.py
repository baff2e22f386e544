"""tinygrad: Tensor.binary_crossentropy(_logits), cross_entropy and
sparse_categorical_crossentropy, run eagerly (lazily, realised at once) and under TinyJit,
differentiated with Tensor.gradient.

Its CPU device compiles every kernel with clang, which must be installed. The default
ignore_index=-1 of sparse_categorical_crossentropy means "ignore nothing" (a label of -1 then
costs 0 and still counts in the mean), so a case without ignore_index is passed that default.
cross_entropy puts the classes on axis 1, sparse_categorical_crossentropy on the last axis.
"""
from __future__ import annotations

import numpy as np
from tinygrad import Device, Tensor, TinyJit, dtypes

from conformance.adapters.api import (Adapter, Call, Capability, Result, as_float, move_class_axis,
                                      results_in_modes)

DTYPES = {"float16": dtypes.float16, "float32": dtypes.float32, "float64": dtypes.float64}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
# bfloat16 kernels do not compile with Debian 12's clang 14 (__builtin_bit_cast of __bf16)
OFFERED_DTYPES = tuple(DTYPES)
MODES = ("eager", "jit")
JIT_CALLS = 3  # TinyJit runs the first two calls itself and replays its captured kernels from the third


def tinygrad_devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if Device.DEFAULT in ("CUDA", "NV") else ("cpu",)


def to_tensor(array, dtype):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return Tensor(array.astype(np.int32), dtype=dtypes.int32)
    return Tensor(np.ascontiguousarray(as_float(array).astype(np.float64)), dtype=dtypes.float64).cast(DTYPES[dtype])


def to_result(tensor, device, mode):
    return Result(tensor.cast(dtypes.float64).numpy(), NAMES.get(tensor.dtype, str(tensor.dtype)), device, mode)


def _reduction(options):
    return options.get("reduction", "none")


def _class_axis_last(t, options):
    axis = options.get("axis", -1) % t.ndim
    return t if axis == t.ndim - 1 else t.permute(*[i for i in range(t.ndim) if i != axis], axis)


def _class_axis_second(t, options):
    return t.permute(*move_class_axis(t.ndim, options.get("axis", -1))) if t.ndim > 1 else t


def sigmoid_cross_entropy(x, y, options):
    pos = options.get("pos_weight")
    pos = None if pos is None else to_tensor(np.asarray(pos, np.float64), NAMES[x.dtype])
    return x.binary_crossentropy_logits(y, reduction=_reduction(options), pos_weight=pos)


def binary_crossentropy(p, y, options):
    return p.binary_crossentropy(y, reduction=_reduction(options))


def softmax_cross_entropy(z, y, options):
    return _class_axis_second(z, options).cross_entropy(_class_axis_second(y, options), reduction=_reduction(options),
                                                        label_smoothing=options.get("label_smoothing") or 0.0)


def sparse_softmax_cross_entropy(z, labels, options):
    ignore_index = options.get("ignore_index")
    return _class_axis_last(z, options).sparse_categorical_crossentropy(
        labels, ignore_index=-1 if ignore_index is None else ignore_index,
        label_smoothing=options.get("label_smoothing") or 0.0, reduction=_reduction(options))


def mean_squared_error(a, y, options):
    loss = (a - y).square()
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[_reduction(options)]


def nll_of_log_softmax(z, labels, options):
    return _class_axis_second(z, options).log_softmax(axis=1 if z.ndim > 1 else 0).nll_loss(
        labels, reduction=_reduction(options))


def dense_of_log_softmax(z, y, options):
    loss = -(y * z.log_softmax(axis=options.get("axis", -1))).sum(axis=options.get("axis", -1))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[_reduction(options)]


class TinygradAdapter(Adapter):
    framework = "tinygrad"
    packages = ("tinygrad",)
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"pos_weight"}, dtypes=OFFERED_DTYPES,
                                            modes=MODES),
        "binary_crossentropy": Capability(binary_crossentropy, dtypes=OFFERED_DTYPES, modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, options={"label_smoothing"},
                                            dtypes=OFFERED_DTYPES, modes=MODES),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy,
                                                   options={"label_smoothing", "ignore_index"},
                                                   dtypes=OFFERED_DTYPES, modes=MODES),
        "mean_squared_error": Capability(mean_squared_error, dtypes=OFFERED_DTYPES, modes=MODES),
    }

    devices = staticmethod(tinygrad_devices)

    def _each_mode(self, compute, device, *arrays):
        """compute(*tensors) realised eagerly, then through TinyJit (replayed from its third call)."""
        def run(mode):
            if mode == "eager":
                return to_result(compute(*arrays).realize(), device, mode)
            jitted = TinyJit(lambda *tensors: compute(*tensors).realize())
            for _ in range(JIT_CALLS):
                out = jitted(*[a.clone().realize() for a in arrays])
            return to_result(out, device, mode)
        return results_in_modes(MODES, run)

    def loss(self, op, prediction, labels, options, dtype, device):
        implementation = self.capability(op).implementation
        return self._each_mode(lambda x, y: implementation(x, y, options), device, to_tensor(prediction, dtype),
                               to_tensor(labels, dtype))

    def gradient(self, call: Call) -> Result:
        implementation = self.capability(call.op).implementation
        on_labels = call.wrt == "labels"

        def derivative(x, y):
            out = implementation(x, y, call.options)
            target = y if on_labels else x
            if call.cotangent is None:
                return out.sum().gradient(target)[0]
            return out.gradient(target, gradient=to_tensor(np.asarray(call.cotangent, np.float64), NAMES[out.dtype]))[0]

        return self._each_mode(derivative, call.device, to_tensor(call.prediction, call.dtype),
                               to_tensor(call.labels, call.dtype))

class TinygradComposed(TinygradAdapter):
    composition = "Tensor.log_softmax, then Tensor.nll_loss (dense labels: -(y * log_softmax).sum)"
    capabilities = {"sparse_softmax_cross_entropy": Capability(nll_of_log_softmax, dtypes=OFFERED_DTYPES, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, dtypes=OFFERED_DTYPES, modes=MODES)}
