"""The float64 gradients, held to the mpmath oracle (tests/unit/reference_oracle.py).

Gradients of the form a - y (sigmoid(z) - y, softmax(z) sum(y) - y) cancel where the label is
close to the prediction. Double-double keeps 2**-100 of the operands, so a result that is
2**-53 of them (a label equal to the float64 nearest the prediction) still has 47 good bits,
not 53. So gradient errors are in ULPs of max(|exact|, 2**-CANCELLED_BITS x SCALE), SCALE
being the magnitudes the reference's formula subtracts: 1 ULP of the result wherever fewer
than 48 bits cancel. The adversarial families with labels set to the rounded prediction show
up to 80 ULPs of the (tiny) result, 0.52 in this measure.
"""
import functools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference.ops.binary import binary_crossentropy, sigmoid_cross_entropy, sigmoid_cross_entropy_grad
from reference.ops.softmax import (softmax_cross_entropy, softmax_cross_entropy_grad, sparse_softmax_cross_entropy,
                                   sparse_softmax_cross_entropy_grad)
from reference.ops.squared_error import mean_squared_error_grad, sigmoid_half_squared_error_grad
from tests.unit import reference_oracle as oracle
from tests.unit.reference_inputs import (ULP_BOUND, check, mse_inputs, sigmoid_inputs, softmax_rows, sparse_rows,
                                         ulp_error)

CANCELLED_BITS = 48  # 1 ULP of max(|result|, 2**-48 x what the formula subtracts)


def _sigmoid(z):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad_scale(z, y):
    """What sigmoid(z) - y subtracts, in the reference's form with the smaller operands:
    |1 - y| + sigmoid(-z) (z >= 0) or sigmoid(z) + |y| (saturated), |1/2 - y| + |sigmoid(z) - 1/2|
    (centred); times 2**-CANCELLED_BITS."""
    with np.errstate(invalid="ignore"):
        saturated = np.where(z >= 0, np.abs(1 - y) + _sigmoid(-z), _sigmoid(z) + np.abs(y))
        centred = np.abs(0.5 - y) + np.abs(_sigmoid(z) - 0.5)
    return np.minimum(saturated, centred) * 2.0**-CANCELLED_BITS


@functools.lru_cache(maxsize=None)
def sigmoid_grad_inputs():
    """The sigmoid inputs, and labels set to the float64 nearest sigmoid(z): the worst case of
    the cancellation in sigmoid(z) - y, all 53 bits."""
    z, y = sigmoid_inputs()
    rng = np.random.default_rng(8)
    near = rng.choice([-1.0, 1.0], 300) * 10.0 ** rng.uniform(-3, 1.5, 300)
    with mpmath.workdps(40):
        nearest = [float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in near]
    return np.concatenate([z, near]), np.concatenate([y, nearest])


def test_sigmoid_cross_entropy_grad():
    z, y = sigmoid_grad_inputs()
    exact = [oracle.sigmoid_cross_entropy_grad(a, b) for a, b in zip(z, y)]
    check("sigmoid grad", sigmoid_cross_entropy_grad(z, y), exact, list(zip(z, y)), ULP_BOUND,
          sigmoid_grad_scale(z, y))


def test_sigmoid_half_squared_error_grad():
    z, y = sigmoid_grad_inputs()
    exact = [oracle.sigmoid_half_squared_error_grad(a, b) for a, b in zip(z, y)]
    scale = sigmoid_grad_scale(z, y) * _sigmoid(z) * _sigmoid(-z)
    check("sigmoid half squared error grad", sigmoid_half_squared_error_grad(z, y), exact,
          list(zip(z, y)), ULP_BOUND, scale)


POS_WEIGHTS = [0.25, 3.0, 1e-3, 1e6]


@pytest.mark.parametrize("pos_weight", POS_WEIGHTS)
def test_weighted_sigmoid_cross_entropy(pos_weight):
    """tf.nn.weighted_cross_entropy_with_logits and torch's pos_weight: the loss, and its
    gradient (1 - y) sigmoid(z) - q y sigmoid(-z), whose two terms cancel near the optimum."""
    z, y = sigmoid_inputs()
    exact = [oracle.sigmoid_cross_entropy(a, b, pos_weight) for a, b in zip(z, y)]
    check("weighted sigmoid_cross_entropy", sigmoid_cross_entropy(z, y, pos_weight), exact,
          list(zip(z, y)), ULP_BOUND)
    exact = [oracle.sigmoid_cross_entropy_grad(a, b, pos_weight) for a, b in zip(z, y)]
    with np.errstate(invalid="ignore"):
        scale = (np.abs(1 - y) * _sigmoid(z) + pos_weight * np.abs(y) * _sigmoid(-z)) * 2.0**-CANCELLED_BITS
    check("weighted sigmoid grad", sigmoid_cross_entropy_grad(z, y, pos_weight), exact, list(zip(z, y)),
          ULP_BOUND, scale)


@pytest.mark.parametrize("half", [False, True])
def test_mean_squared_error_grad(half):
    a, y = mse_inputs()
    exact = [oracle.mean_squared_error_grad(u, v, half) for u, v in zip(a, y)]
    check("mean_squared_error grad", mean_squared_error_grad(a, y, half), exact, list(zip(a, y)),
          ULP_BOUND)


def softmax_f64(z):
    """top, softmax and rest in plain float64: magnitudes for SCALE, not values under test."""
    m = np.max(z, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(z - m)
    top = np.argmax(z, axis=1)
    others = e.copy()
    others[np.arange(len(z)), top] = 0.0
    rest = others.sum(axis=1)
    return top, e / (1 + rest)[:, None], rest


def softmax_grad_scale(z, y):
    """What softmax(z) sum(y) - y subtracts: p_j |sum y| and |y_j|; at a top class holding most
    of the mass (rest < 1), |sum of the other labels| and |sum y| rest / (1 + rest); times
    2**-CANCELLED_BITS."""
    top, p, rest = softmax_f64(z)
    total = y.sum(axis=1)
    scale = p * np.abs(total)[:, None] + np.abs(y)
    rows = np.arange(len(z))[rest < 1]
    at_top = top[rows]
    scale[rows, at_top] = np.abs(total[rows] - y[rows, at_top]) + np.abs(total[rows]) * rest[rows] / (1 + rest[rows])
    return scale * 2.0**-CANCELLED_BITS


@mpmath.workdps(40)
def nearest_softmax(row):
    e = [mpmath.exp(mpmath.mpf(v)) for v in row]
    total = mpmath.fsum(e)
    return [float(v / total) for v in e]


@functools.lru_cache(maxsize=None)
def softmax_grad_rows():
    """The softmax rows, and rows whose labels are the float64 nearest softmax(z)."""
    rng = np.random.default_rng(9)
    rows = list(softmax_rows())
    for classes in (2, 5, 30):
        z = rng.normal(0, 3, (40, classes))
        rows.append((z, np.array([nearest_softmax(row) for row in z])))
    return rows


def test_softmax_cross_entropy_grad():
    for z, y in softmax_grad_rows():
        exact = [v for a, b in zip(z, y) for v in oracle.softmax_cross_entropy_grad(a, b)]
        inputs = [(a, b, j) for a, b in zip(z, y) for j in range(z.shape[1])]
        check(f"softmax grad, {z.shape[1]} classes", softmax_cross_entropy_grad(z, y), exact, inputs,
              ULP_BOUND, softmax_grad_scale(z, y))


def test_sparse_softmax_cross_entropy_grad():
    """softmax_j - [j == label]: nothing cancels (1 - softmax at the top class is rest / (1 + rest)),
    so plain ULPs of the result."""
    for z, label in sparse_rows():
        exact = [v for a, k in zip(z, label) for v in oracle.sparse_softmax_cross_entropy_grad(a, k)]
        inputs = [(a, k, j) for a, k in zip(z, label) for j in range(z.shape[1])]
        check(f"sparse softmax grad, {z.shape[1]} classes", sparse_softmax_cross_entropy_grad(z, label),
              exact, inputs, ULP_BOUND)


# Any float64 at all (hypothesis, derandomised) -----------------------------------------------

ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)
UNIT = st.floats(0.0, 1.0, width=64)
SETTINGS = settings(derandomize=True, max_examples=300, deadline=None, database=None)


@SETTINGS
@given(ANY_FLOAT, UNIT)
def test_sigmoid_any_float(z, y):
    assert ulp_error(sigmoid_cross_entropy(z, y), oracle.sigmoid_cross_entropy(z, y)) <= ULP_BOUND
    scale = sigmoid_grad_scale(np.float64(z), np.float64(y))
    grad = sigmoid_cross_entropy_grad(z, y)
    assert ulp_error(grad, oracle.sigmoid_cross_entropy_grad(z, y), scale) <= ULP_BOUND


@SETTINGS
@given(UNIT, UNIT)
def test_binary_crossentropy_any_probability(p, y):
    assert ulp_error(binary_crossentropy(p, y), oracle.binary_crossentropy(p, y)) <= ULP_BOUND


@SETTINGS
@given(st.lists(st.floats(-1e6, 1e6, width=64), min_size=1, max_size=6), st.data())
def test_softmax_any_row(z, data):
    label = data.draw(st.integers(0, len(z) - 1))
    y = data.draw(st.lists(st.floats(0.0, 2.0, width=64), min_size=len(z), max_size=len(z)))
    row, labels, one = np.array([z]), np.array([y]), np.array([label])
    assert ulp_error(sparse_softmax_cross_entropy(row, one)[0],
                     oracle.sparse_softmax_cross_entropy(z, label)) <= ULP_BOUND
    assert ulp_error(softmax_cross_entropy(row, labels)[0], oracle.softmax_cross_entropy(z, y)) <= ULP_BOUND
    sparse_grad = sparse_softmax_cross_entropy_grad(row, one)[0]
    for g, e in zip(sparse_grad, oracle.sparse_softmax_cross_entropy_grad(z, label)):
        assert ulp_error(g, e) <= ULP_BOUND
    scale = softmax_grad_scale(row, labels)[0]
    for g, e, s in zip(softmax_cross_entropy_grad(row, labels)[0], oracle.softmax_cross_entropy_grad(z, y), scale):
        assert ulp_error(g, e, s) <= ULP_BOUND
