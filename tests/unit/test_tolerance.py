"""The tolerance model catches real errors and passes honest float arithmetic."""
import numpy as np
import pytest

from conformance.core import tolerance as tol
from conformance.core.compare import compare
from reference import registry

RNG = np.random.default_rng(20261124)


def sparse_case(offset=0.0, n=256, c=50, dtype=np.float32):
    logits = (RNG.normal(0, 3, (n, c)) + offset).astype(dtype)
    labels = RNG.integers(0, c, n)
    inputs = {"logits": logits.astype(np.float64), "labels": labels}
    expected = registry.evaluate_loss("sparse_softmax_cross_entropy", "exact", inputs, {}, "float32")
    scale = registry.evaluate_scale("sparse_softmax_cross_entropy", "exact", inputs, {}, "float32")
    return logits, labels, expected, scale


def check(expected, actual, scale, dtype="float32"):
    return compare(expected, actual, scale, dtype, tol.for_check(dtype), actual_dtype=dtype)


def lse_minus_label(logits, labels):
    """optax's order of operations in float32: logsumexp(z), rounded, minus z[label]."""
    m = logits.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    return lse - logits[np.arange(len(labels)), labels]


def test_honest_float32_logsumexp_passes():
    logits, labels, expected, scale = sparse_case()
    verdict = check(expected, lse_minus_label(logits, labels), scale)
    assert verdict.passed, verdict
    assert verdict.max_ulp_err > 0  # it is not bit-exact, and still passes


@pytest.mark.parametrize("relative", [1e-4, -1e-4])
def test_a_relative_error_of_1e_minus_4_fails_at_float32(relative):
    logits, labels, expected, scale = sparse_case()
    broken = (expected * (1 + relative)).astype(np.float32)
    verdict = check(expected, broken, scale)
    assert not verdict.passed and verdict.mismatched > 0.9 * verdict.total


def test_a_one_percent_gradient_error_fails():
    logits, labels, _, _ = sparse_case()
    inputs = {"logits": logits.astype(np.float64), "labels": labels}
    grad, scale = registry.evaluate_grad("sparse_softmax_cross_entropy", "exact", inputs, {}, "float32")
    assert check(grad, grad.astype(np.float32), scale).passed
    assert not check(grad, (grad * 1.01).astype(np.float32), scale).passed


def shifted_first(logits, labels):
    """Offset-proof: log(sum(exp(z - max))) - (z[label] - max), both terms shift-invariant."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_an_implementation_that_loses_accuracy_to_a_common_offset_fails(offset):
    """logsumexp(z) - z[label] rounds lse at the offset's magnitude; shifting first does not."""
    logits, labels, expected, scale = sparse_case(offset)
    assert check(expected, shifted_first(logits, labels), scale).passed
    verdict = check(expected, lse_minus_label(logits, labels), scale)
    assert not verdict.passed and verdict.max_ulp_err > 1000


def test_nan_passes_only_where_the_reference_is_nan():
    scale = np.ones(3)
    assert check(np.array([1.0, np.nan, np.inf]), np.array([1.0, np.nan, np.inf], np.float32), scale).passed
    assert not check(np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 3.0], np.float32), scale).passed
    assert not check(np.array([1.0, np.inf, 3.0]), np.array([1.0, -np.inf, 3.0], np.float32), scale).passed


def test_ulp_distance_treats_signed_zeros_as_equal_and_has_a_floor():
    assert tol.ulp_distance(-0.0, 0.0, "float32") == 0.0
    assert tol.ulp(0.0, "float32") > 0
    assert tol.ulp(1.0, "float32") == 2.0**-23
    assert tol.ulp(1.5, "bfloat16") == 2.0**-7
    assert tol.ulp_distance(1.0 + 2**-22, 1.0, "float32") == pytest.approx(2.0)


def test_a_wrong_dtype_or_shape_fails_even_with_equal_values():
    assert not compare([1.0], [1.0], [1.0], "float64", tol.for_check("float64"), actual_dtype="float32").passed
    assert not compare([1.0], [[1.0]], [1.0], "float32", tol.for_check("float32")).passed


def test_tolerances_are_data_with_a_row_per_dtype():
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        t = tol.for_check(dtype)
        assert t.ulp > 0 and t.cond > 0


@pytest.mark.parametrize("p", [1e-6, 1e-7])
def test_log_of_one_minus_p_loses_to_cancellation_and_fails_where_log1p_passes(p):
    """-log(1 - p) rounds 1 - p first: at p = 1e-6 in float32 that is a 1.3% error on the loss.
    The scale comes from the mathematics (log(1 - p) moves by eps p / (1 - p)), not from the
    1 - p an implementation chose to round."""
    probs = np.array([p], np.float32).astype(np.float64)
    inputs = {"probs": probs, "labels": np.array([0.0])}
    expected = registry.evaluate_loss("binary_crossentropy", "exact", inputs, {}, "float32")
    scale = registry.evaluate_scale("binary_crossentropy", "exact", inputs, {}, "float32")
    x = probs.astype(np.float32)
    naive = -np.log(np.float32(1) - x)
    careful = -np.log1p(-x)
    assert abs(naive[0] / expected[0] - 1) > 1e-3  # the cancellation is real: 1.3% at 1e-6, 19% at 1e-7
    assert not compare(expected, naive, scale, "float32", tol.for_check("float32")).passed
    assert compare(expected, careful, scale, "float32", tol.for_check("float32")).passed
