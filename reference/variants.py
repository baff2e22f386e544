"""What the frameworks really compute, where it differs from the mathematics.

Each variant is a pure float64 function of the inputs and of the dtype under test, whose
constants (epsilon, clip bounds) are rounded to that dtype, as the framework stores them.
"""
import numpy as np

from reference import losses
from reference.dtypes import constant

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), tf_keras.backend.epsilon()
TORCH_LOG_FLOOR = -100.0  # F.binary_cross_entropy clamps each log term at -100


def keras_clip(probs, dtype):
    """clip(p, eps, 1 - eps) with both bounds rounded to dtype: float32(1 - 1e-7) = 1 - 2**-23."""
    epsilon = constant(KERAS_EPSILON, dtype)
    return np.clip(probs, epsilon, constant(1.0 - epsilon, dtype))


def keras_normalize(probs, axis):
    """Keras divides categorical probabilities by their sum before clipping."""
    return probs / np.sum(probs, axis=axis, keepdims=True)


def bce_keras3_clip(probs, labels, dtype):
    """Keras 3 binary_crossentropy: clip to [eps, 1 - eps], then the exact formula."""
    return losses.binary_crossentropy(keras_clip(probs, dtype), labels)


def bce_keras2_logit(probs, labels, dtype):
    """Keras 2.2 binary_crossentropy: clip, recover a logit log(p / (1 - p)), then sigmoid CE.

    In exact arithmetic this equals bce_keras3_clip; the article's 1.1920933e-07 is this path
    evaluated in float32, where the logit 15.942385 is rounded before the sigmoid.
    """
    p = keras_clip(probs, dtype)
    return losses.sigmoid_cross_entropy(np.log(p / (1.0 - p)), labels)


def bce_tf_keras(probs, labels, dtype):
    """tf-keras (Keras 2) binary_crossentropy: clip, then epsilon added inside each log."""
    epsilon = constant(KERAS_EPSILON, dtype)
    p = keras_clip(probs, dtype)
    return -(losses.xlogy(labels, p + epsilon) + losses.xlogy(1.0 - labels, 1.0 - p + epsilon))


def bce_torch(probs, labels, dtype):
    """F.binary_cross_entropy: each log term clamped at -100 before weighting by the label."""
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(probs), TORCH_LOG_FLOOR)
        log_q = np.maximum(np.log(1.0 - probs), TORCH_LOG_FLOOR)
    return -(labels * log_p + (1.0 - labels) * log_q)


def sigmoid_keras_numpy(logits, labels, dtype):
    """keras-numpy binary_crossentropy(from_logits=True): sigmoid, then the Keras 3 clip."""
    return bce_keras3_clip(losses.sigmoid(logits), labels, dtype)


def cce_keras_normalize_clip(probs, labels, dtype, axis=-1):
    """Keras categorical_crossentropy: p / sum(p), clip, then -sum y log p."""
    return losses.categorical_crossentropy(keras_clip(keras_normalize(probs, axis), dtype), labels, axis)


def scce_keras_normalize_clip(probs, labels, dtype, axis=-1):
    """Keras sparse_categorical_crossentropy: p / sum(p), clip, then -log p[label]."""
    return losses.sparse_categorical_crossentropy(keras_clip(keras_normalize(probs, axis), dtype), labels, axis)


def scce_keras_clip_normalize(probs, labels, dtype, axis=-1):
    """keras-tensorflow and tf-keras sparse_categorical_crossentropy: clip, log, then softmax.

    The sparse softmax kernel renormalises the clipped probabilities: -log(c[label] / sum(c)).
    """
    clipped = keras_clip(probs, dtype)
    return losses.sparse_categorical_crossentropy(keras_normalize(clipped, axis), labels, axis)


# Gradients with respect to the probabilities: (gradient, conditioning scale) pairs. A clip
# passes the gradient where lo <= p <= hi and stops it outside, as clip_by_value does.


def _inside(p, dtype):
    epsilon = constant(KERAS_EPSILON, dtype)
    return (p >= epsilon) & (p <= constant(1.0 - epsilon, dtype))


def _bce_terms(p, labels, shift=0.0):
    """-y / (p + shift) and (1 - y) / (1 - p + shift), the two terms of d BCE / dp."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -losses.times(labels, 1.0 / (p + shift)), losses.times(1.0 - labels, 1.0 / (1.0 - p + shift))


def _pair(first, second, mask=None):
    grad, scale = first + second, 2.0 * (np.abs(first) + np.abs(second))
    if mask is None:
        return grad, scale
    return np.where(mask, grad, 0.0), np.where(mask, scale, 0.0)


def bce_grad_exact(probs, labels, dtype):
    return _pair(*_bce_terms(probs, labels))


def bce_grad_keras_clip(probs, labels, dtype):
    """Keras 3 and Keras 2.2 (whose logit path has the same derivative inside the clip)."""
    return _pair(*_bce_terms(keras_clip(probs, dtype), labels), _inside(probs, dtype))


def bce_grad_tf_keras(probs, labels, dtype):
    return _pair(*_bce_terms(keras_clip(probs, dtype), labels, constant(KERAS_EPSILON, dtype)), _inside(probs, dtype))


def bce_grad_torch(probs, labels, dtype):
    """PyTorch's explicit backward: (p - y) / max(p (1 - p), 1e-12)."""
    denominator = np.maximum(probs * (1.0 - probs), 1e-12)
    return (probs - labels) / denominator, 2.0 * (np.abs(probs) + np.abs(labels)) / denominator


def cce_grad_exact(probs, labels, dtype, axis=-1):
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = -losses.times(labels, 1.0 / probs)
    return grad, 2.0 * np.abs(grad)


def _normalized_grad(probs, g, axis):
    """d/dp_j of a loss of q = p / sum(p), given g = dL/dq: (g_j - sum_c g_c q_c) / sum(p)."""
    total = np.sum(probs, axis=axis, keepdims=True)
    q = probs / total
    back = np.sum(g * q, axis=axis, keepdims=True)
    return (g - back) / total, 2.0 * (np.abs(g) + np.sum(np.abs(g * q), axis=axis, keepdims=True)) / total


def cce_grad_keras_normalize_clip(probs, labels, dtype, axis=-1):
    q = keras_normalize(probs, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(_inside(q, dtype), -losses.times(labels, 1.0 / keras_clip(q, dtype)), 0.0)
    return _normalized_grad(probs, g, axis)


def _onehot(labels, like, axis):
    onehot = np.zeros_like(like)
    np.put_along_axis(onehot, np.expand_dims(np.asarray(labels, np.int64), axis), 1.0, axis=axis)
    return onehot


def scce_grad_exact(probs, labels, dtype, axis=-1):
    return cce_grad_exact(probs, _onehot(labels, probs, axis), dtype, axis)


def scce_grad_keras_normalize_clip(probs, labels, dtype, axis=-1):
    return cce_grad_keras_normalize_clip(probs, _onehot(labels, probs, axis), dtype, axis)


def scce_grad_keras_clip_normalize(probs, labels, dtype, axis=-1):
    """-log(c_y / sum(c)) with c = clip(p): (1 / sum(c) - [j == y] / c_y) where p is inside."""
    clipped = keras_clip(probs, dtype)
    onehot = _onehot(labels, probs, axis)
    total = np.sum(clipped, axis=axis, keepdims=True)
    first, second = -onehot / clipped, np.broadcast_to(1.0 / total, clipped.shape)
    return _pair(first, second, _inside(probs, dtype))
