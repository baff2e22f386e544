"""Analytic gradients of the unreduced losses with respect to the prediction input.

These are the article's central formulas: cross-entropy through a sigmoid or softmax has the
gradient a - y, free of the activation's own derivative, while 1/2 (a - y)^2 through a
sigmoid keeps the factor a (1 - a) that vanishes when the sigmoid saturates.
"""
import numpy as np

from reference import losses


def sigmoid_cross_entropy(logits, labels):
    """d/dz = sigmoid(z) - y, as (1 - y) - sigmoid(-z) for z >= 0.

    The second form is the same number without rounding a saturated sigmoid(40) to 1: a
    correct, confident prediction keeps its gradient of -4e-18 instead of 0.
    """
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    return np.where(z >= 0, (1.0 - y) - losses.sigmoid(-z), losses.sigmoid(z) - y)


def softmax_cross_entropy(logits, labels, axis=-1):
    """d/dz = softmax(z) * sum(y) - y (softmax(z) - y only when the labels sum to 1).

    softmax(z) = e / (1 + rest) (losses.softmax_parts). Where the top class has most of the
    mass (rest < 1), its softmax is 1 - rest / (1 + rest) and its gradient is computed as
    sum(other labels) - sum(y) rest / (1 + rest): a confident, correct prediction keeps its
    gradient of -1e-20 instead of rounding 1 - 1e-20 to 1 and returning 0.
    """
    parts = losses.softmax_parts(logits, axis)
    y = np.broadcast_to(np.asarray(labels, np.float64), parts.e.shape)
    total = np.expand_dims(losses.accurate_sum(y, axis), axis)
    others = y.copy()
    np.put_along_axis(others, parts.top, 0.0, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = parts.e / (1.0 + parts.rest) * total - y
        confident = np.expand_dims(losses.accurate_sum(others, axis), axis) - total * (parts.rest / (1.0 + parts.rest))
    at_top = np.where(parts.finite & (parts.rest < 1.0), confident, np.take_along_axis(grad, parts.top, axis))
    np.put_along_axis(grad, parts.top, at_top, axis=axis)
    return grad


def sparse_softmax_cross_entropy(logits, labels, axis=-1):
    """d/dz = softmax(z) - onehot(label), with 1 - softmax = rest / (1 + rest) at the top class."""
    parts = losses.softmax_parts(logits, axis)
    label = np.expand_dims(np.asarray(labels, np.int64), axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = parts.e / (1.0 + parts.rest)
        p_label = np.take_along_axis(p, label, axis)
        at_label = np.where(label == parts.top, -(parts.rest / (1.0 + parts.rest)), p_label - 1.0)
    np.put_along_axis(p, label, np.where(parts.finite, at_label, p_label - 1.0), axis=axis)
    return p


def mean_squared_error(predictions, labels, half=False):
    """d/da = 2 (a - y), or (a - y) for the article's 1/2 (a - y)^2."""
    return (1.0 if half else 2.0) * (predictions - labels)


def sigmoid_half_squared_error(logits, labels):
    """d/dz of 1/2 (sigmoid(z) - y)^2 = (a - y) a (1 - a): zero where the sigmoid saturates."""
    z = np.asarray(logits, np.float64)
    return sigmoid_cross_entropy(z, labels) * losses.sigmoid(z) * losses.sigmoid(-z)  # 1 - a = sigmoid(-z)
