"""mean_squared_error: (a - y)^2 elementwise, as Keras and PyTorch define it (the reduction
takes the mean), or the article's 1/2 (a - y)^2 with the `half` option; and the article's
contrast, the gradient of 1/2 (sigmoid(z) - y)^2 with respect to the logit, which vanishes
where the sigmoid saturates.
"""
import numpy as np
import numpy.typing as npt

from reference.declaration import Op, Variant
from reference.option_declaration import Option, taking
from reference.options import REDUCTION
from reference.numerics import doubledouble as dd
from reference.numerics.sigmoid import sigmoid_minus_labels, sigmoid_parts
from reference.numerics.terms import as_float64


def mean_squared_error(predictions: npt.ArrayLike, labels: npt.ArrayLike, half: bool = False) -> np.ndarray:
    """(a - y)^2 elementwise, or the article's 1/2 (a - y)^2 with half."""
    with np.errstate(invalid="ignore", over="ignore"):
        d = dd.DD(*dd.two_sum(as_float64(predictions), -as_float64(labels)))
        d = dd.DD(d.hi, np.where(np.isfinite(d.hi), d.lo, 0.0))
    # Squares below 2**-800 are formed at 2**+600 and rounded once into the subnormal range.
    tiny = np.abs(d.hi) < 2.0**-400
    d = dd.scale(d, np.where(tiny, 600, 0))
    return dd.value_scaled(dd.mul(d, d), np.where(tiny, -1200, 0) - (1 if half else 0))


def mean_squared_error_grad(predictions: np.ndarray, labels: np.ndarray, half: bool = False) -> np.ndarray:
    """d/da = 2 (a - y), or (a - y) for the article's 1/2 (a - y)^2: one rounding, exact."""
    return (1.0 if half else 2.0) * (predictions - labels)


def mean_squared_error_scale(loss: np.ndarray) -> np.ndarray:
    """fl(a - y) is off by eps relative, squaring doubles it: a few eps of the result."""
    return 3.0 * np.abs(loss)


def mean_squared_error_grad_scale(predictions: npt.ArrayLike, labels: np.ndarray) -> np.ndarray:
    return 2.0 * np.abs(np.asarray(predictions, np.float64) - labels)


def _label_grad(a: npt.ArrayLike, y: np.ndarray, dtype: str, half: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """d/dy = -d/da."""
    d = (0.5 if half else 1.0) * 2.0 * (np.asarray(a, np.float64) - y)
    return -d, 2.0 * np.abs(d)


def sigmoid_half_squared_error_grad(logits: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:

    """d/dz of 1/2 (sigmoid(z) - y)^2 = (a - y) a (1 - a): zero where the sigmoid saturates.

    a (1 - a) = s (1 - s) with s = sigmoid(-|z|) = 2**k (1 + m) / (1 + e), exp(-|z|) =
    2**k (1 + m): the product is formed without 2**k and scaled once at the end, so a result
    in the subnormal range (|z| near 745) is rounded once, not at every factor.
    """
    z, y = np.broadcast_arrays(np.asarray(logits, np.float64), np.asarray(labels, np.float64))
    parts = sigmoid_parts(z)
    s_unscaled = dd.div(parts.unscaled(), dd.add(dd.of(1.0), parts.e))
    product = dd.mul(sigmoid_minus_labels(z, y, parts), dd.mul(s_unscaled, dd.sub(dd.of(1.0), parts.s)))
    return dd.value_scaled(product, parts.exponent)


HALF = Option(name="half", kind="boolean", default=False, description="1/2 (a - y)^2 rather than (a - y)^2")

MEAN_SQUARED_ERROR = Op(
    name="mean_squared_error", prediction="predictions", integer_labels=False, class_axis=False,
    options=taking(REDUCTION, HALF),
    variants={
        "exact": Variant(
            loss=lambda a, y, dtype, half: mean_squared_error(a, y, half),
            scale=lambda a, y, loss, dtype, half: mean_squared_error_scale(loss),
            grad=lambda a, y, dtype, half: (mean_squared_error_grad(a, y, half), mean_squared_error_grad_scale(a, y)),
            grad_labels=_label_grad),
    },
)

DECLARATIONS = (MEAN_SQUARED_ERROR,)
