"""NumPy as a user writes it, computed in the dtype under test (not the float64 reference)."""
import numpy as np

from conformance.adapters.base import Adapter, Result, elementwise_reduce


def _zero_weight(weight, term):
    """weight * term, with a zero weight ignoring an infinite or NaN term."""
    return np.where(weight == 0, np.zeros_like(term), weight * term)


def _log_softmax(z, axis):
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _take(values, labels, axis):
    return np.squeeze(np.take_along_axis(values, np.expand_dims(labels, axis), axis=axis), axis)


class NumpyAdapter(Adapter):
    framework = "numpy"
    dtypes = ("float16", "float32", "float64")
    autodiff = False
    variants = {
        "sigmoid_cross_entropy": "exact",
        "binary_crossentropy": "exact",
        "softmax_cross_entropy": "exact",
        "categorical_crossentropy": "exact",
        "sparse_softmax_cross_entropy": "exact",
        "sparse_categorical_crossentropy": "exact",
        "mean_squared_error": "exact",
    }

    def version(self):
        return np.__version__

    def loss(self, op, prediction, labels, options, dtype, device):
        axis = options.get("axis", -1)
        x, y = prediction, labels
        with np.errstate(all="ignore"):
            if op == "sigmoid_cross_entropy":
                out = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
            elif op == "binary_crossentropy":
                out = -(_zero_weight(y, np.log(x)) + _zero_weight(1 - y, np.log1p(-x)))
            elif op == "softmax_cross_entropy":
                out = -np.sum(_zero_weight(y, _log_softmax(x, axis)), axis=axis)
            elif op == "categorical_crossentropy":
                out = -np.sum(_zero_weight(y, np.log(x)), axis=axis)
            elif op == "sparse_softmax_cross_entropy":
                out = -_take(_log_softmax(x, axis), y, axis)
            elif op == "sparse_categorical_crossentropy":
                out = -np.log(_take(x, y, axis))
            else:  # mean_squared_error
                out = np.square(x - y) * x.dtype.type(0.5 if options.get("half") else 1.0)
            out = elementwise_reduce(out, options.get("reduction", "none"), np.sum, np.mean)
        out = np.asarray(out)
        return Result(out.astype(np.float64), str(out.dtype), "cpu")


ADAPTER = NumpyAdapter
