"""The article's numbers come out of the reference variants that explain them.

Each pinned value was printed by float32 TensorFlow/Keras; the float64 reference variant,
evaluated on the float32 inputs with float32 constants, must agree within the float32
tolerance of this suite (the same bound a framework gets).
"""
import pytest

from conformance.core import tolerance as tol
from conformance.cases import load_case_file
from conformance.core.compare import compare
from conformance.core.runner import cast_inputs
from reference import registry

CASES = load_case_file("cases/article.yaml")
PINNED = [(case, pinned) for case in CASES for pinned in case.pinned]


def test_all_six_article_values_are_pinned():
    values = sorted(p.value for _, p in PINNED)
    assert values == sorted([0.3132617, 1.1920933e-07, 1.939785, 1.9095424, 0.31326166, 1.609438])


@pytest.mark.parametrize("case,pinned", PINNED, ids=[c.name for c, _ in PINNED])
def test_reference_variant_reproduces_the_article(case, pinned):
    cast = {k: v.astype("float64") for k, v in cast_inputs(case, pinned.dtype).items()}
    expected = registry.evaluate_loss(case.op, pinned.variant, cast, case.options, pinned.dtype)
    scale = registry.evaluate_scale(case.op, pinned.variant, cast, case.options, pinned.dtype)
    verdict = compare(expected, [pinned.value] * expected.size if expected.ndim else pinned.value,
                      scale, pinned.dtype, tol.for_check(pinned.dtype))
    assert verdict.passed, (expected, pinned.value, verdict)


def test_logit_path_of_the_article_is_the_clip_in_exact_arithmetic():
    """1.1920933e-07 and Keras 3's 1.1920929e-07 are one number, -log(1 - 2**-23), rounded two ways."""
    inputs = {"probs": [1.0], "labels": [1.0]}
    logit = registry.evaluate_loss("binary_crossentropy", "keras2_logit", inputs, {}, "float32")
    clip = registry.evaluate_loss("binary_crossentropy", "keras3_clip", inputs, {}, "float32")
    assert logit == pytest.approx(clip, rel=1e-12)
    assert clip == pytest.approx(2.0**-23, rel=1e-6)


def test_the_article_gradient_claim():
    """Through a saturated sigmoid the MSE gradient vanishes, the cross-entropy one does not."""
    from reference.ops.binary import sigmoid_cross_entropy_grad
    from reference.ops.squared_error import sigmoid_half_squared_error_grad

    z, y = 12.0, 0.0  # confidently wrong
    assert abs(sigmoid_cross_entropy_grad(z, y)) > 0.99
    assert abs(sigmoid_half_squared_error_grad(z, y)) < 1e-5
