"""The mathematical definitions, one float64 function per canonical op.

Each loss is evaluated in double-double arithmetic (reference/doubledouble.py) and rounded to
float64 once, so it is within 1 ULP of the exact value of its float64 inputs
(tests/unit/test_oracle.py holds it to mpmath). The formulas are also chosen so that nothing
cancels: log softmax as (z - max z) - log1p(rest), log sigmoid in the form for z's sign.

Unreduced outputs: elementwise ops (sigmoid / binary cross-entropy, squared error) keep the
input shape; class ops (softmax / categorical cross-entropy) drop the class axis.
Conventions at the boundary follow the limits: 0 * log 0 = 0, a -inf logit with label 0
contributes nothing, +inf with label 1 costs nothing; a class row without a finite maximum
(all -inf, or a +inf or NaN logit) gives NaN.
"""
from typing import NamedTuple

import numpy as np

from reference import doubledouble as dd


def _floats(x):
    return np.asarray(x, dtype=np.float64)


def dd_times(coefficient, value):
    """coefficient * value (double-doubles) with 0 * inf = 0: a zero weight ignores an infinite term."""
    product = dd.mul(coefficient, value)
    zero = coefficient.hi == 0
    return dd.DD(np.where(zero, 0.0, product.hi), np.where(zero, 0.0, product.lo))


def dd_xlogy(x, p):
    """x * log(p) for float64 x and p, with 0 * log(anything) = 0."""
    return dd_times(dd.of(x), dd.log(p))


def one_minus(y):
    """1 - y as a double-double: exact for every float64 y."""
    return dd.DD(*dd.two_sum(np.float64(1.0), -_floats(y)))


def xlogy(x, y):
    """x * log(y) with 0 * log(anything) = 0, the convention entropy uses."""
    x, y = np.broadcast_arrays(_floats(x), _floats(y))
    return dd_xlogy(x, y).hi


def times(coefficient, value):
    """coefficient * value with 0 * inf = 0 (a zero label weight ignores an infinite term)."""
    with np.errstate(invalid="ignore"):
        return np.where(coefficient == 0, 0.0, coefficient * value)


class SigmoidParts(NamedTuple):
    """exp(-|z|) and sigmoid(-|z|), computed once for every sigmoid loss and gradient."""
    exponent: np.ndarray  # e = 2**exponent (1 + m), dd.exp_parts of -|z|
    m: dd.DD
    e: dd.DD  # exp(-|z|)
    s: dd.DD  # sigmoid(-|z|) = e / (1 + e); sigmoid(z) is s for z < 0, 1 - s for z >= 0

    def unscaled(self):
        """e / 2**exponent: a subnormal e's digits, for products rounded once (dd.value_scaled)."""
        return dd.add(dd.of(1.0), self.m)

    def expm1(self):
        """exp(-|z|) - 1, relatively accurate for z near 0."""
        return dd.parts_to_expm1(self.exponent, self.m)


def sigmoid_parts(z):
    k, m = dd.exp_parts(dd.of(-np.abs(_floats(z))))
    e = dd.parts_to_exp(k, m)
    return SigmoidParts(k, m, e, dd.div(e, dd.add(dd.of(1.0), e)))


def dd_log_sigmoid(z, e=None):
    """log(sigmoid(z)) = -log1p(exp(-z)) for z >= 0 and z - log1p(exp(z)) below."""
    z = _floats(z)
    e = sigmoid_parts(z).e if e is None else e
    softplus = dd.log1p(e)
    return dd.where(z >= 0, dd.neg(softplus), dd.sub(dd.of(z), softplus))


def log_sigmoid(z):
    return dd_log_sigmoid(z).hi


def sigmoid(z):
    z = _floats(z)
    s = sigmoid_parts(z).s
    return np.where(z >= 0, dd.sub(dd.of(1.0), s).hi, s.hi)


def accurate_sum(values, axis=-1):
    """Sum along axis in double-double, rounded once: within half an ulp or so of the exact
    sum of terms of one sign, where np.sum's rounding at every level of its tree can leave a
    long row of equal terms (uniform logits, smoothed labels) several ulps off."""
    return dd.sum(dd.of(values), axis).hi


class SoftmaxParts(NamedTuple):
    finite: np.ndarray  # whether the row's maximum is finite (kept axis)
    m: np.ndarray  # max z along the axis (kept), 0 where it is not finite
    top: np.ndarray  # index of the first maximum (kept axis)
    gap: dd.DD  # z - m, exactly
    e: dd.DD  # exp(z - m); exactly 1 at top
    rest: dd.DD  # sum of e over every class but top: logsumexp(z) = m + log1p(rest)
    e_exponent: np.ndarray  # e = 2**e_exponent * e_unscaled, for probabilities too small
    e_unscaled: dd.DD  # to round more than once (subnormal): see dd.value_scaled

    def softmax_unscaled(self):
        """softmax(z) / 2**e_exponent = e_unscaled / (1 + rest)."""
        return dd.div(self.e_unscaled, dd.add(dd.of(1.0), self.rest))


def softmax_parts(z, axis):
    """The pieces of an accurate softmax along axis.

    Shifting by the maximum first keeps a common offset of the logits (1e4, 1e8) from costing
    accuracy; log1p(rest) keeps a confident prediction's small loss (log(1 + 1e-20) is not 0).
    """
    z = _floats(z)
    m = np.max(z, axis=axis, keepdims=True)
    finite = np.isfinite(m)
    m = np.where(finite, m, 0.0)
    with np.errstate(invalid="ignore"):
        gap = dd.DD(*dd.two_sum(z, -m))
    gap = dd.DD(gap.hi, np.where(np.isfinite(gap.hi), gap.lo, 0.0))
    k, expm1 = dd.exp_parts(gap)
    e_unscaled = dd.add(dd.of(1.0), expm1)
    e = dd.scale(e_unscaled, k)
    top = np.expand_dims(np.argmax(z, axis=axis), axis)
    others = dd.put_along_axis(e, top, dd.of(np.zeros(top.shape)), axis)
    rest = dd.expand_dims(dd.sum(others, axis), axis)
    return SoftmaxParts(finite, m, top, gap, e, rest, k, e_unscaled)


def dd_log_softmax(z, axis):
    """z - logsumexp(z), as (z - max z) - log1p(rest): two terms <= 0, nothing cancels."""
    parts = softmax_parts(z, axis)
    out = dd.sub(parts.gap, dd.log1p(parts.rest))
    return dd.where(parts.finite, out, dd.of(np.full(out.hi.shape, np.nan)))


def log_softmax(z, axis):
    return dd_log_softmax(z, axis).hi


def logsumexp(z, axis):
    """log(sum(exp(z))) = max z + log1p(rest)."""
    parts = softmax_parts(z, axis)
    out = dd.add(dd.of(parts.m), dd.log1p(parts.rest))
    return np.squeeze(np.where(parts.finite, out.hi, np.nan), axis)


def sigmoid_cross_entropy(logits, labels, pos_weight=None):
    """-[q y log sigmoid(z) + (1 - y) log sigmoid(-z)], q = pos_weight (1 when absent)."""
    z, y = np.broadcast_arrays(_floats(logits), _floats(labels))
    parts = sigmoid_parts(z)
    weight = dd.of(y) if pos_weight is None else dd.DD(*dd.two_prod(np.float64(pos_weight), y))
    loss = dd.add(dd_times(weight, dd_log_sigmoid(z, parts.e)), dd_times(one_minus(y), dd_log_sigmoid(-z, parts.e)))
    # Where one term is left, weight * log1p(e) = weight * e: formed unscaled, rounded once.
    alone = dd.where(z >= 0, weight, dd.of(np.ones_like(z)))  # q y (y = 1), or 1 - y (y = 0)
    lone = dd.value_scaled(dd.mul(alone, parts.unscaled()), parts.exponent)
    return np.where(lone_tiny_term(z, y, parts.e), lone, -loss.hi)


def lone_tiny_term(z, y, e):
    """Where a hard label sits on the side the logit favours (y = 1 for z >= 0, y = 0 below)
    and e = exp(-|z|) < 2**-900: the loss and its gradient are then one term of size e,
    subnormal beyond |z| = 708, which must be scaled once rather than rounded at each factor."""
    return ((z >= 0) & (y == 1) | (z < 0) & (y == 0)) & (e.hi < 2.0**-900)


def binary_crossentropy(probs, labels):
    """-[y log p + (1 - y) log(1 - p)], log(1 - p) as log1p(-p): exact for small p too."""
    p, y = np.broadcast_arrays(_floats(probs), _floats(labels))
    loss = dd.add(dd_xlogy(y, p), dd_times(one_minus(y), dd.log1p(dd.of(-p))))
    return -loss.hi


def softmax_cross_entropy(logits, labels, axis=-1):
    """-sum_c y_c log softmax(z)_c; labels need not sum to 1."""
    log_p = dd_log_softmax(logits, axis)
    y = np.broadcast_to(_floats(labels), log_p.hi.shape)
    return -dd.sum(dd_times(dd.of(y), log_p), axis).hi


def categorical_crossentropy(probs, labels, axis=-1):
    """-sum_c y_c log p_c, probabilities taken as given."""
    y, p = np.broadcast_arrays(_floats(labels), _floats(probs))
    return -dd.sum(dd_xlogy(y, p), axis).hi


def take_class(values, labels, axis):
    """values[..., labels[...], ...] along the class axis."""
    index = np.expand_dims(np.asarray(labels, dtype=np.int64), axis)
    return np.squeeze(np.take_along_axis(values, index, axis=axis), axis)


def sparse_softmax_cross_entropy(logits, labels, axis=-1):
    """logsumexp(z) - z[label], computed as -log_softmax(z)[label] so that nothing cancels."""
    return -take_class(log_softmax(logits, axis), labels, axis)


def sparse_categorical_crossentropy(probs, labels, axis=-1):
    """-log p[label]."""
    return -dd.log(take_class(_floats(probs), labels, axis)).hi


def mean_squared_error(predictions, labels, half=False):
    """(a - y)^2 elementwise, or the article's 1/2 (a - y)^2 with half."""
    with np.errstate(invalid="ignore", over="ignore"):
        d = dd.DD(*dd.two_sum(_floats(predictions), -_floats(labels)))
        d = dd.DD(d.hi, np.where(np.isfinite(d.hi), d.lo, 0.0))
    # Squares below 2**-800 are formed at 2**+600 and rounded once into the subnormal range.
    tiny = np.abs(d.hi) < 2.0**-400
    d = dd.scale(d, np.where(tiny, 600, 0))
    return dd.value_scaled(dd.mul(d, d), np.where(tiny, -1200, 0) - (1 if half else 0))
