"""NumPy as a user writes it, computed in the dtype under test (not the float64 reference)."""
import numpy as np

from conformance.adapters.api import Adapter, Capability, Result, elementwise_reduce
from conformance.adapters.kernel_modules import moved_to_bench


def _zero_weight(weight, term):
    """weight * term, with a zero weight ignoring an infinite or NaN term."""
    return np.where(weight == 0, np.zeros_like(term), weight * term)


def _log_softmax(z, axis):
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _take(values, labels, axis):
    """values at each label, as a careful user gathers them: a label outside [0, classes) is
    refused, where NumPy's indexing would wrap -1 around to the last class."""
    classes = values.shape[axis]
    outside = (labels < 0) | (labels >= classes)
    if outside.any():
        raise IndexError(f"label {labels[outside].flat[0]} is outside the {classes} classes")
    return np.squeeze(np.take_along_axis(values, np.expand_dims(labels, axis), axis=axis), axis)


def sigmoid_cross_entropy(x, y, options):
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def binary_crossentropy(p, y, options):
    return -(_zero_weight(y, np.log(p)) + _zero_weight(1 - y, np.log1p(-p)))


def _soft_cap(z, options):
    """Gemma 2's logit soft-capping as a user writes it: c * tanh(z / c)."""
    cap = options.get("softcap")
    return z if cap is None else z.dtype.type(cap) * np.tanh(z / z.dtype.type(cap))


def softmax_cross_entropy(z, y, options):
    axis = options.get("axis", -1)
    return -np.sum(_zero_weight(y, _log_softmax(_soft_cap(z, options), axis)), axis=axis)


def categorical_crossentropy(p, y, options):
    axis = options.get("axis", -1)
    return -np.sum(_zero_weight(y, np.log(p)), axis=axis)


def sparse_softmax_cross_entropy(z, labels, options):
    axis = options.get("axis", -1)
    return -_take(_log_softmax(_soft_cap(z, options), axis), labels, axis)


def sparse_categorical_crossentropy(p, labels, options):
    return -np.log(_take(p, labels, options.get("axis", -1)))


def mean_squared_error(a, y, options):
    return np.square(a - y) * a.dtype.type(0.5 if options.get("half") else 1.0)


NUMPY_DTYPES = ("float16", "float32", "float64")  # NumPy has no bfloat16 arithmetic of its own


class NumpyAdapter(Adapter):
    framework = "numpy"
    packages = ("numpy",)
    capabilities = {
        op.__name__: Capability(op, dtypes=NUMPY_DTYPES, differentiable=False,
                                options={"softcap"} if op in (softmax_cross_entropy, sparse_softmax_cross_entropy)
                                else ())
        for op in (sigmoid_cross_entropy, binary_crossentropy, softmax_cross_entropy, categorical_crossentropy,
                   sparse_softmax_cross_entropy, sparse_categorical_crossentropy)
    }
    capabilities["mean_squared_error"] = Capability(mean_squared_error, dtypes=NUMPY_DTYPES, options={"half"},
                                                    differentiable=False)

    def loss(self, op, prediction, labels, options, dtype, device):
        implementation = self.capability(op).implementation
        with np.errstate(all="ignore"):
            out = implementation(prediction, labels, options)
            out = np.asarray(elementwise_reduce(out, options.get("reduction", "none"), np.sum, np.mean))
        return Result(out.astype(np.float64), str(out.dtype), "cpu")


# the benchmark helpers plug-ins imported from here, now in conformance/bench/builtin/numpy_kernels.py
__getattr__ = moved_to_bench(__name__, ("numpy_timed",))
