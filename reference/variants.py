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
