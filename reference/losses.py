"""The mathematical definitions, one float64 function per canonical op.

Unreduced outputs: elementwise ops (sigmoid / binary cross-entropy, squared error) keep the
input shape; class ops (softmax / categorical cross-entropy) drop the class axis.
Conventions at the boundary follow the limits: 0 * log 0 = 0, a -inf logit with label 0
contributes nothing, +inf with label 1 costs nothing.
"""
import numpy as np


def xlogy(x, y):
    """x * log(y) with 0 * log(anything) = 0, the convention entropy uses."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


def times(coefficient, value):
    """coefficient * value with 0 * inf = 0 (a zero label weight ignores an infinite term)."""
    with np.errstate(invalid="ignore"):
        return np.where(coefficient == 0, 0.0, coefficient * value)


def log_sigmoid(z):
    """log(sigmoid(z)) without overflow: -log1p(exp(-z)) for z >= 0, z - log1p(exp(z)) below."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(z >= 0, -np.log1p(np.exp(-z)), z - np.log1p(np.exp(z)))


def sigmoid(z):
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logsumexp(z, axis):
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def log_softmax(z, axis):
    return np.asarray(z, np.float64) - np.expand_dims(logsumexp(z, axis), axis)


def sigmoid_cross_entropy(logits, labels):
    """-[y log sigmoid(z) + (1 - y) log sigmoid(-z)]."""
    y = np.asarray(labels, np.float64)
    return -(times(y, log_sigmoid(logits)) + times(1.0 - y, log_sigmoid(-np.asarray(logits, np.float64))))


def binary_crossentropy(probs, labels):
    """-[y log p + (1 - y) log(1 - p)]."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, np.float64)
    return -(xlogy(y, p) + xlogy(1.0 - y, 1.0 - p))


def softmax_cross_entropy(logits, labels, axis=-1):
    """-sum_c y_c log softmax(z)_c; labels need not sum to 1."""
    return -np.sum(times(np.asarray(labels, np.float64), log_softmax(logits, axis)), axis=axis)


def categorical_crossentropy(probs, labels, axis=-1):
    """-sum_c y_c log p_c, probabilities taken as given."""
    return -np.sum(xlogy(labels, probs), axis=axis)


def take_class(values, labels, axis):
    """values[..., labels[...], ...] along the class axis."""
    index = np.expand_dims(np.asarray(labels, dtype=np.int64), axis)
    return np.squeeze(np.take_along_axis(values, index, axis=axis), axis)


def sparse_softmax_cross_entropy(logits, labels, axis=-1):
    """logsumexp(z) - z[label]."""
    z = np.asarray(logits, np.float64)
    return logsumexp(z, axis) - take_class(z, labels, axis)


def sparse_categorical_crossentropy(probs, labels, axis=-1):
    """-log p[label]."""
    with np.errstate(divide="ignore"):
        return -np.log(take_class(np.asarray(probs, np.float64), labels, axis))


def mean_squared_error(predictions, labels, half=False):
    """(a - y)^2 elementwise, or the article's 1/2 (a - y)^2 with half."""
    d = np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)
    return (0.5 if half else 1.0) * d * d
