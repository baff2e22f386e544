"""Gradients with respect to soft labels, as (gradient, conditioning scale) pairs.

Every loss here is linear in its labels, so d/dy is the loss's per-class log term: -z for
sigmoid cross-entropy (log sigmoid(-z) - log sigmoid(z)), -log softmax(z) for softmax
cross-entropy, -log p + log(1 - p) for binary cross-entropy on probabilities (through each
variant's clip or epsilon), -log p for categorical, -2 (a - y) for squared error.
"""
import numpy as np

from reference import conditioning, losses, variants
from reference.dtypes import constant


def _pair(first, second=0.0):
    return first + second, 2.0 * (np.abs(first) + np.abs(second))


def sigmoid_exact(z, y, dtype, pos_weight=None):
    """-q log sigmoid(z) + log sigmoid(-z) (= -z for q = 1): autodiff through the log-sigmoid
    form rounds both terms, so both magnitudes count."""
    first, second = -(1.0 if pos_weight is None else pos_weight) * losses.log_sigmoid(z), losses.log_sigmoid(-z)
    grad = -np.asarray(z, np.float64) if pos_weight is None else first + second
    return grad, 2.0 * (np.abs(first) + np.abs(second))


def sigmoid_keras_numpy(z, y, dtype, pos_weight=None):
    return bce_keras_clip(losses.sigmoid(z), y, dtype)


def _bce(p, shift=0.0):
    with np.errstate(divide="ignore"):
        return _pair(-np.log(p + shift), np.log(1.0 - p + shift))


def bce_exact(p, y, dtype):
    with np.errstate(divide="ignore"):
        return _pair(-np.log(p), np.log1p(-p))


def bce_keras_clip(p, y, dtype):
    """Keras 3 and Keras 2.2: d/dy of the loss of the clipped p (the logit path's -z' is the same)."""
    return _bce(variants.keras_clip(p, dtype))


def bce_tf_keras(p, y, dtype):
    return _bce(variants.keras_clip(p, dtype), constant(variants.KERAS_EPSILON, dtype))


def bce_torch(p, y, dtype):
    with np.errstate(divide="ignore"):
        floor = variants.TORCH_LOG_FLOOR
        return _pair(-np.maximum(np.log(p), floor), np.maximum(np.log1p(-p), floor))


def softmax_exact(z, y, dtype, axis=-1):
    log_p = losses.log_softmax(z, axis)
    return -log_p, np.abs(log_p) + conditioning.softmax_terms(z, axis)


def categorical_exact(p, y, dtype, axis=-1):
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    return -log_p, 2.0 * np.abs(log_p) + 1.0


def categorical_keras_normalize_clip(p, y, dtype, axis=-1):
    return categorical_exact(variants.keras_clip(variants.keras_normalize(p, axis), dtype), y, dtype, axis)


def squared_error(a, y, dtype, half=False):
    d = (0.5 if half else 1.0) * 2.0 * (np.asarray(a, np.float64) - y)
    return -d, 2.0 * np.abs(d)
