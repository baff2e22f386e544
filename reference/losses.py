"""The mathematical definitions, one float64 function per canonical op.

Unreduced outputs: elementwise ops (sigmoid / binary cross-entropy, squared error) keep the
input shape; class ops (softmax / categorical cross-entropy) drop the class axis.
Conventions at the boundary follow the limits: 0 * log 0 = 0, a -inf logit with label 0
contributes nothing, +inf with label 1 costs nothing.
"""
from typing import NamedTuple

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


def accurate_sum(values, axis=-1):
    """Sum along axis as if in twice the precision, then rounded once.

    A pairwise sum whose rounding errors, recovered exactly at every level by Knuth's two-sum,
    are added back at the end. np.sum rounds at every level of its tree (and sums blocks of
    up to 16 terms one by one), so a long row of equal terms (uniform logits, smoothed labels)
    can be off by several ulps; this is off by half an ulp. Infinities and NaN propagate as
    in np.sum.
    """
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    if x.shape[-1] == 0:
        return np.zeros(x.shape[:-1])
    lost = np.zeros(x.shape[:-1])
    with np.errstate(invalid="ignore"):
        while x.shape[-1] > 1:
            if x.shape[-1] % 2:
                x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,))], axis=-1)
            a, b = x[..., 0::2], x[..., 1::2]
            s = a + b
            back = s - a
            error = (a - (s - back)) + (b - back)
            lost = lost + np.sum(np.where(np.isfinite(s), error, 0.0), axis=-1)
            x = s
    return x[..., 0] + lost


class SoftmaxParts(NamedTuple):
    finite: np.ndarray  # whether the row's maximum is finite (kept axis)
    m: np.ndarray  # max z along the axis (kept), 0 where it is not finite
    top: np.ndarray  # index of the first maximum (kept axis)
    shifted: np.ndarray  # fl(z - m); shifted + lo = z - m exactly (Knuth's two-sum)
    lo: np.ndarray
    e: np.ndarray  # exp(z - m), lo included to first order; exactly 1 at top
    rest: np.ndarray  # sum of e over every class but top: logsumexp(z) = m + log1p(rest)


def softmax_parts(z, axis):
    """The pieces of an accurate softmax along axis.

    Shifting by the maximum first keeps a common offset of the logits (1e4, 1e8) from costing
    accuracy; log1p(rest) keeps a confident prediction's small loss (log(1 + 1e-20) is not 0);
    lo keeps the rounding of z - m out of exp. A row without a finite maximum gets
    rest = sum(e) - 1: -inf for a row of -inf, inf with a +inf, NaN with a NaN.
    """
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    finite = np.isfinite(m)
    m = np.where(finite, m, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = z - m
        back = shifted - z
        lo = np.where(np.isfinite(shifted), (z - (shifted - back)) - (m + back), 0.0)
        e = np.exp(shifted)
        e = e + np.where(lo == 0, 0.0, e * lo)
    top = np.expand_dims(np.argmax(z, axis=axis), axis)
    others = e.copy()
    np.put_along_axis(others, top, 0.0, axis=axis)
    rest = np.where(finite, np.sum(others, axis=axis, keepdims=True), np.sum(e, axis=axis, keepdims=True) - 1.0)
    return SoftmaxParts(finite, m, top, shifted, lo, e, rest)


def logsumexp(z, axis):
    """log(sum(exp(z))) = max z + log1p(rest), see softmax_parts."""
    parts = softmax_parts(z, axis)
    with np.errstate(divide="ignore"):
        return np.squeeze(parts.m + np.log1p(parts.rest), axis)


def log_softmax(z, axis):
    """z - logsumexp(z), as (z - max z) - log1p(rest): two terms <= 0, nothing cancels."""
    parts = softmax_parts(z, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (parts.shifted - np.log1p(parts.rest)) + parts.lo


def sigmoid_cross_entropy(logits, labels):
    """-[y log sigmoid(z) + (1 - y) log sigmoid(-z)]."""
    y = np.asarray(labels, np.float64)
    return -(times(y, log_sigmoid(logits)) + times(1.0 - y, log_sigmoid(-np.asarray(logits, np.float64))))


def binary_crossentropy(probs, labels):
    """-[y log p + (1 - y) log(1 - p)]."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.log1p(-p)  # log(1 - p) without rounding 1 - p: exact for small p too
    return -(xlogy(y, p) + times(1.0 - y, log_q))


def softmax_cross_entropy(logits, labels, axis=-1):
    """-sum_c y_c log softmax(z)_c; labels need not sum to 1."""
    return -accurate_sum(times(np.asarray(labels, np.float64), log_softmax(logits, axis)), axis)


def categorical_crossentropy(probs, labels, axis=-1):
    """-sum_c y_c log p_c, probabilities taken as given."""
    return -accurate_sum(xlogy(labels, probs), axis)


def take_class(values, labels, axis):
    """values[..., labels[...], ...] along the class axis."""
    index = np.expand_dims(np.asarray(labels, dtype=np.int64), axis)
    return np.squeeze(np.take_along_axis(values, index, axis=axis), axis)


def sparse_softmax_cross_entropy(logits, labels, axis=-1):
    """logsumexp(z) - z[label], computed as -log_softmax(z)[label] so that nothing cancels."""
    return -take_class(log_softmax(logits, axis), labels, axis)


def sparse_categorical_crossentropy(probs, labels, axis=-1):
    """-log p[label]."""
    with np.errstate(divide="ignore"):
        return -np.log(take_class(np.asarray(probs, np.float64), labels, axis))


def mean_squared_error(predictions, labels, half=False):
    """(a - y)^2 elementwise, or the article's 1/2 (a - y)^2 with half."""
    d = np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)
    return (0.5 if half else 1.0) * d * d
