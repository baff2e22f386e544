"""The accurate pieces of a sigmoid: exp(-|z|) once, log sigmoid without cancellation, and
sigmoid(z) - y in whichever exact form subtracts the smaller numbers."""
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reference.numerics import doubledouble as dd
from reference.numerics.terms import as_float64, one_minus


class SigmoidParts(NamedTuple):
    """exp(-|z|) and sigmoid(-|z|), computed once for every sigmoid loss and gradient."""
    exponent: np.ndarray  # e = 2**exponent (1 + m), dd.exp_parts of -|z|
    m: dd.DD
    e: dd.DD  # exp(-|z|)
    s: dd.DD  # sigmoid(-|z|) = e / (1 + e); sigmoid(z) is s for z < 0, 1 - s for z >= 0

    def unscaled(self) -> dd.DD:
        """e / 2**exponent: a subnormal e's digits, for products rounded once (dd.value_scaled)."""
        return dd.add(dd.of(1.0), self.m)

    def expm1(self) -> dd.DD:
        """exp(-|z|) - 1, relatively accurate for z near 0."""
        return dd.parts_to_expm1(self.exponent, self.m)


def sigmoid_parts(z: npt.ArrayLike) -> SigmoidParts:
    k, m = dd.exp_parts(dd.of(-np.abs(as_float64(z))))
    e = dd.parts_to_exp(k, m)
    return SigmoidParts(k, m, e, dd.div(e, dd.add(dd.of(1.0), e)))


def dd_log_sigmoid(z: npt.ArrayLike, e: dd.DD | None = None) -> dd.DD:
    """log(sigmoid(z)) = -log1p(exp(-z)) for z >= 0 and z - log1p(exp(z)) below."""
    z = as_float64(z)
    e = sigmoid_parts(z).e if e is None else e
    softplus = dd.log1p(e)
    return dd.where(z >= 0, dd.neg(softplus), dd.sub(dd.of(z), softplus))


def log_sigmoid(z: npt.ArrayLike) -> np.ndarray:
    return dd_log_sigmoid(z).hi


def sigmoid(z: npt.ArrayLike) -> np.ndarray:
    z = as_float64(z)
    s = sigmoid_parts(z).s
    return np.where(z >= 0, dd.sub(dd.of(1.0), s).hi, s.hi)


def lone_tiny_term(z: np.ndarray, y: np.ndarray, e: dd.DD) -> np.ndarray:
    """Where a hard label sits on the side the logit favours (y = 1 for z >= 0, y = 0 below)
    and e = exp(-|z|) < 2**-900: the loss and its gradient are then one term of size e,
    subnormal beyond |z| = 708, which must be scaled once rather than rounded at each factor."""
    return ((z >= 0) & (y == 1) | (z < 0) & (y == 0)) & (e.hi < 2.0**-900)


def sigmoid_minus_labels(z: np.ndarray, y: np.ndarray, parts: SigmoidParts) -> dd.DD:
    """sigmoid(z) - y in whichever of two exact forms subtracts the smaller numbers.

    Saturated: (1 - y) - sigmoid(-z) for z >= 0 (sigmoid(z) - y below), so that sigmoid(40) is
    never rounded to 1 and a correct, confident prediction keeps its gradient of -4e-18.
    Centred: (1/2 - y) + sign(z) t with t = sigmoid(|z|) - 1/2 = -expm1(-|z|) / (2 (1 + e)),
    so that a logit near 0 with a label near 1/2 (sigmoid(1e-300) - 1/2) keeps its z / 4.
    """
    s = parts.s  # sigmoid(-|z|)
    saturated = dd.where(z >= 0, dd.sub(one_minus(y), s), dd.sub(s, dd.of(y)))
    half_minus_y = dd.DD(*dd.two_sum(np.float64(0.5), -y))
    t = dd.div(dd.neg(parts.expm1()), dd.scale(dd.add(dd.of(1.0), parts.e), 1))
    centred = dd.add(half_minus_y, dd.DD(np.sign(z) * t.hi, np.sign(z) * t.lo))
    with np.errstate(invalid="ignore"):
        saturated_size = np.where(z >= 0, np.abs(1.0 - y), np.abs(y)) + s.hi
        use_centred = np.abs(0.5 - y) + t.hi < saturated_size
    return dd.where(use_centred, centred, saturated)
