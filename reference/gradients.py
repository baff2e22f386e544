"""Analytic gradients of the unreduced losses with respect to the prediction input.

These are the article's central formulas: cross-entropy through a sigmoid or softmax has the
gradient a - y, free of the activation's own derivative, while 1/2 (a - y)^2 through a
sigmoid keeps the factor a (1 - a) that vanishes when the sigmoid saturates.
"""
import numpy as np

from reference import losses


def sigmoid_cross_entropy(logits, labels):
    """d/dz = sigmoid(z) - y."""
    return losses.sigmoid(logits) - labels


def softmax_cross_entropy(logits, labels, axis=-1):
    """d/dz = softmax(z) * sum(y) - y (softmax(z) - y only when the labels sum to 1)."""
    p = np.exp(losses.log_softmax(logits, axis))
    return p * np.sum(labels, axis=axis, keepdims=True) - labels


def sparse_softmax_cross_entropy(logits, labels, axis=-1):
    """d/dz = softmax(z) - onehot(label)."""
    p = np.exp(losses.log_softmax(logits, axis))
    onehot = np.zeros_like(p)
    np.put_along_axis(onehot, np.expand_dims(np.asarray(labels, np.int64), axis), 1.0, axis=axis)
    return p - onehot


def mean_squared_error(predictions, labels, half=False):
    """d/da = 2 (a - y), or (a - y) for the article's 1/2 (a - y)^2."""
    return (1.0 if half else 2.0) * (predictions - labels)


def sigmoid_half_squared_error(logits, labels):
    """d/dz of 1/2 (sigmoid(z) - y)^2 = (a - y) a (1 - a): zero where the sigmoid saturates."""
    a = losses.sigmoid(logits)
    return (a - labels) * a * (1.0 - a)
