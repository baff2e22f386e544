"""Keras's clip of probabilities to [eps, 1 - eps] and its renormalisation of categorical
probabilities, shared by the probability ops' Keras variants.

Constants are rounded to the dtype under test, as the framework stores them.
"""
import numpy as np
import numpy.typing as npt

from reference.dtypes import constant

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), tf_keras.backend.epsilon()


def keras_clip(probs: npt.ArrayLike, dtype: str) -> np.ndarray:
    """clip(p, eps, 1 - eps) with both bounds rounded to dtype: float32(1 - 1e-7) = 1 - 2**-23."""
    epsilon = constant(KERAS_EPSILON, dtype)
    return np.clip(probs, epsilon, constant(1.0 - epsilon, dtype))


def keras_normalize(probs: np.ndarray, axis: int) -> np.ndarray:
    """Keras divides categorical probabilities by their sum before clipping."""
    return probs / np.sum(probs, axis=axis, keepdims=True)


def inside_clip(p: np.ndarray, dtype: str) -> np.ndarray:

    """Where the clip passes p through (lo <= p <= hi): outside, it stops the gradient."""
    epsilon = constant(KERAS_EPSILON, dtype)
    return (p >= epsilon) & (p <= constant(1.0 - epsilon, dtype))
