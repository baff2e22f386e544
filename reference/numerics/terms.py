"""Products, logs and sums with the conventions of entropy, in float64 and double-double.

0 * log 0 = 0, and a zero coefficient ignores an infinite term (a -inf logit under a zero
label contributes nothing).
"""
import numpy as np
import numpy.typing as npt

from reference.numerics import doubledouble as dd


def as_float64(x: npt.ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def dd_times(coefficient: dd.DD, value: dd.DD) -> dd.DD:
    """coefficient * value (double-doubles) with 0 * inf = 0: a zero weight ignores an infinite term."""
    product = dd.mul(coefficient, value)
    zero = coefficient.hi == 0
    return dd.DD(np.where(zero, 0.0, product.hi), np.where(zero, 0.0, product.lo))


def dd_xlogy(x: npt.ArrayLike, p: npt.ArrayLike) -> dd.DD:
    """x * log(p) for float64 x and p, with 0 * log(anything) = 0."""
    return dd_times(dd.of(x), dd.log(p))


def one_minus(y: npt.ArrayLike) -> dd.DD:
    """1 - y as a double-double: exact for every float64 y."""
    return dd.DD(*dd.two_sum(np.float64(1.0), -as_float64(y)))


def xlogy(x: npt.ArrayLike, y: npt.ArrayLike) -> np.ndarray:
    """x * log(y) with 0 * log(anything) = 0, the convention entropy uses."""
    x, y = np.broadcast_arrays(as_float64(x), as_float64(y))
    return dd_xlogy(x, y).hi


def times(coefficient: np.ndarray | float, value: np.ndarray | float) -> np.ndarray:
    """coefficient * value with 0 * inf = 0 (a zero label weight ignores an infinite term)."""
    with np.errstate(invalid="ignore"):
        return np.where(coefficient == 0, 0.0, coefficient * value)


def accurate_sum(values: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Sum along axis in double-double, rounded once: within half an ulp or so of the exact
    sum of terms of one sign, where np.sum's rounding at every level of its tree can leave a
    long row of equal terms (uniform logits, smoothed labels) several ulps off."""
    return dd.sum(dd.of(values), axis).hi
