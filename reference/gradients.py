"""Analytic gradients of the unreduced losses with respect to the prediction input.

These are the article's central formulas: cross-entropy through a sigmoid or softmax has the
gradient a - y, free of the activation's own derivative, while 1/2 (a - y)^2 through a
sigmoid keeps the factor a (1 - a) that vanishes when the sigmoid saturates.

Evaluated in double-double and rounded once, like reference/losses.py. A gradient a - y
cancels where a is close to y; the forms below keep every cancellation that the exact value
does not have out (a saturated sigmoid, a confident softmax), and what remains is the exact
value's own: double-double's 2**-100 against the subtracted magnitudes.
"""
import numpy as np

from reference import doubledouble as dd
from reference import losses


def _sigmoid_minus_labels(z, y, parts):
    """sigmoid(z) - y in whichever of two exact forms subtracts the smaller numbers.

    Saturated: (1 - y) - sigmoid(-z) for z >= 0 (sigmoid(z) - y below), so that sigmoid(40) is
    never rounded to 1 and a correct, confident prediction keeps its gradient of -4e-18.
    Centred: (1/2 - y) + sign(z) t with t = sigmoid(|z|) - 1/2 = -expm1(-|z|) / (2 (1 + e)),
    so that a logit near 0 with a label near 1/2 (sigmoid(1e-300) - 1/2) keeps its z / 4.
    """
    s = parts.s  # sigmoid(-|z|)
    saturated = dd.where(z >= 0, dd.sub(losses.one_minus(y), s), dd.sub(s, dd.of(y)))
    half_minus_y = dd.DD(*dd.two_sum(np.float64(0.5), -y))
    t = dd.div(dd.neg(parts.expm1()), dd.scale(dd.add(dd.of(1.0), parts.e), 1))
    centred = dd.add(half_minus_y, dd.DD(np.sign(z) * t.hi, np.sign(z) * t.lo))
    with np.errstate(invalid="ignore"):
        saturated_size = np.where(z >= 0, np.abs(1.0 - y), np.abs(y)) + s.hi
        use_centred = np.abs(0.5 - y) + t.hi < saturated_size
    return dd.where(use_centred, centred, saturated)


def sigmoid_cross_entropy(logits, labels, pos_weight=None):
    """d/dz = sigmoid(z) - y; with a positive weight q, (1 - y) sigmoid(z) - q y sigmoid(-z)."""
    z, y = np.broadcast_arrays(np.asarray(logits, np.float64), np.asarray(labels, np.float64))
    parts = losses.sigmoid_parts(z)
    if pos_weight is None:
        return _sigmoid_minus_labels(z, y, parts).hi
    s = parts.s  # sigmoid(-|z|)
    other = dd.sub(dd.of(1.0), s)  # sigmoid(|z|)
    below, above = dd.where(z >= 0, other, s), dd.where(z >= 0, s, other)  # sigmoid(z), sigmoid(-z)
    weighted = dd.DD(*dd.two_prod(np.float64(pos_weight), y))
    grad = dd.sub(dd.mul(losses.one_minus(y), below), dd.mul(weighted, above)).hi
    # Where one term is left (losses.lone_tiny_term), -q sigmoid(-z) or sigmoid(z) =
    # -+ weight 2**k (1 + m) / (1 + e) with exp(-|z|) = e = 2**k (1 + m): rounded once.
    alone = dd.where(z >= 0, dd.neg(weighted), dd.of(np.ones_like(z)))
    lone = dd.value_scaled(dd.div(dd.mul(alone, parts.unscaled()), dd.add(dd.of(1.0), parts.e)), parts.exponent)
    return np.where(losses.lone_tiny_term(z, y, parts.e), lone, grad)


def softmax_cross_entropy(logits, labels, axis=-1):
    """d/dz = softmax(z) * sum(y) - y (softmax(z) - y only when the labels sum to 1).

    softmax(z) = e / (1 + rest) (losses.softmax_parts). Where the top class has most of the
    mass (rest < 1), its softmax is 1 - rest / (1 + rest) and its gradient is computed as
    sum(other labels) - sum(y) rest / (1 + rest): a confident, correct prediction keeps its
    gradient of -1e-20 instead of cancelling 1 - 1e-20 against 1.
    """
    parts = losses.softmax_parts(logits, axis)
    y = np.broadcast_to(np.asarray(labels, np.float64), parts.e.hi.shape)
    is_top = np.arange(y.shape[axis]).reshape(_along(axis, y.ndim)) == parts.top
    total = dd.expand_dims(dd.sum(dd.of(y), axis), axis)
    others = dd.expand_dims(dd.sum(dd.of(np.where(is_top, 0.0, y)), axis), axis)
    q = parts.softmax_unscaled()
    grad = dd.sub(dd.mul(dd.scale(q, parts.e_exponent), total), dd.of(y)).hi
    confident = dd.sub(others, dd.mul(total, dd.div(parts.rest, dd.add(dd.of(1.0), parts.rest)))).hi
    grad = np.where(is_top & parts.finite & (parts.rest.hi < 1.0), confident, grad)
    # Where the label is 0 the gradient is softmax * sum(y): rounded once, even if subnormal.
    grad = np.where((y == 0) & ~is_top, dd.value_scaled(dd.mul(q, total), parts.e_exponent), grad)
    return np.where(parts.finite, grad, np.nan)


def _along(axis, ndim):
    """The shape that lays a 1-d array along axis of an ndim array."""
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def sparse_softmax_cross_entropy(logits, labels, axis=-1):
    """d/dz = softmax(z) - onehot(label), with 1 - softmax = rest / (1 + rest) at the top class."""
    parts = losses.softmax_parts(logits, axis)
    label = np.expand_dims(np.asarray(labels, np.int64), axis)
    q = parts.softmax_unscaled()
    p_label = dd.scale(dd.take_along_axis(q, label, axis), np.take_along_axis(parts.e_exponent, label, axis))
    at_label = dd.where(label == parts.top, dd.neg(dd.div(parts.rest, dd.add(dd.of(1.0), parts.rest))),
                        dd.sub(p_label, dd.of(1.0)))
    grad = dd.value_scaled(q, parts.e_exponent)  # the softmax, rounded once even where subnormal
    np.put_along_axis(grad, label, at_label.hi, axis=axis)
    return np.where(parts.finite, grad, np.nan)


def mean_squared_error(predictions, labels, half=False):
    """d/da = 2 (a - y), or (a - y) for the article's 1/2 (a - y)^2: one rounding, exact."""
    return (1.0 if half else 2.0) * (predictions - labels)


def sigmoid_half_squared_error(logits, labels):
    """d/dz of 1/2 (sigmoid(z) - y)^2 = (a - y) a (1 - a): zero where the sigmoid saturates.

    a (1 - a) = s (1 - s) with s = sigmoid(-|z|) = 2**k (1 + m) / (1 + e), exp(-|z|) =
    2**k (1 + m): the product is formed without 2**k and scaled once at the end, so a result
    in the subnormal range (|z| near 745) is rounded once, not at every factor.
    """
    z, y = np.broadcast_arrays(np.asarray(logits, np.float64), np.asarray(labels, np.float64))
    parts = losses.sigmoid_parts(z)
    s_unscaled = dd.div(parts.unscaled(), dd.add(dd.of(1.0), parts.e))
    product = dd.mul(_sigmoid_minus_labels(z, y, parts), dd.mul(s_unscaled, dd.sub(dd.of(1.0), parts.s)))
    return dd.value_scaled(product, parts.exponent)
