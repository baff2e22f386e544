"""The accurate pieces of a softmax along a class axis, and indexing by integer labels."""
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reference.numerics import doubledouble as dd
from reference.numerics.terms import as_float64


class SoftmaxParts(NamedTuple):
    finite: np.ndarray  # whether the row's maximum is finite (kept axis)
    m: np.ndarray  # max z along the axis (kept), 0 where it is not finite
    top: np.ndarray  # index of the first maximum (kept axis)
    gap: dd.DD  # z - m, exactly
    e: dd.DD  # exp(z - m); exactly 1 at top
    rest: dd.DD  # sum of e over every class but top: logsumexp(z) = m + log1p(rest)
    e_exponent: np.ndarray  # e = 2**e_exponent * e_unscaled, for probabilities too small
    e_unscaled: dd.DD  # to round more than once (subnormal): see dd.value_scaled

    def softmax_unscaled(self) -> dd.DD:
        """softmax(z) / 2**e_exponent = e_unscaled / (1 + rest)."""
        return dd.div(self.e_unscaled, dd.add(dd.of(1.0), self.rest))


def softmax_parts(z: npt.ArrayLike, axis: int) -> SoftmaxParts:
    """The pieces of an accurate softmax along axis.

    Shifting by the maximum first keeps a common offset of the logits (1e4, 1e8) from costing
    accuracy; log1p(rest) keeps a confident prediction's small loss (log(1 + 1e-20) is not 0).
    """
    z = as_float64(z)
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


def dd_log_softmax(z: npt.ArrayLike, axis: int) -> dd.DD:
    """z - logsumexp(z), as (z - max z) - log1p(rest): two terms <= 0, nothing cancels."""
    parts = softmax_parts(z, axis)
    out = dd.sub(parts.gap, dd.log1p(parts.rest))
    return dd.where(parts.finite, out, dd.of(np.full(out.hi.shape, np.nan)))


def log_softmax(z: npt.ArrayLike, axis: int) -> np.ndarray:
    return dd_log_softmax(z, axis).hi


def logsumexp(z: npt.ArrayLike, axis: int) -> np.ndarray:
    """log(sum(exp(z))) = max z + log1p(rest)."""
    parts = softmax_parts(z, axis)
    out = dd.add(dd.of(parts.m), dd.log1p(parts.rest))
    return np.squeeze(np.where(parts.finite, out.hi, np.nan), axis)


def take_class(values: np.ndarray, labels: npt.ArrayLike, axis: int) -> np.ndarray:
    """values[..., labels[...], ...] along the class axis."""
    index = np.expand_dims(np.asarray(labels, dtype=np.int64), axis)
    return np.squeeze(np.take_along_axis(values, index, axis=axis), axis)


def onehot(labels: npt.ArrayLike, like: np.ndarray, axis: int) -> np.ndarray:
    """Integer labels as one-hot rows along axis, shaped like `like`."""
    out = np.zeros_like(like)
    np.put_along_axis(out, np.expand_dims(np.asarray(labels, np.int64), axis), 1.0, axis=axis)
    return out


def along(axis: int, ndim: int) -> list[int]:
    """The shape that lays a 1-d array along axis of an ndim array."""
    shape = [1] * ndim
    shape[axis] = -1
    return shape
