"""Binary cross-entropies are defined for targets and predicted probabilities in [0, 1]: an
example outside has no loss (NaN, and so has any reduction over it); a case file holds such
values only when it says so. Ops with a class axis keep their loss linear in the labels."""
import numpy as np
import pytest

from conformance.cases import CaseError, load_case_file
from reference import registry

PROBS = np.array([0.3, 1.5, -0.5, 0.7])
TARGETS = np.array([1.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("variant", registry.variant_names("binary_crossentropy"))
def test_predicted_probabilities_outside_have_no_loss_in_any_variant(variant):
    with np.errstate(all="raise"):  # the variants never see the undefined values (no log of a negative)
        loss = registry.evaluate_loss("binary_crossentropy", variant, {"probs": PROBS, "labels": TARGETS}, {},
                                      "float32")
        mean = registry.evaluate_loss("binary_crossentropy", variant, {"probs": PROBS, "labels": TARGETS},
                                      {"reduction": "mean"}, "float32")
    assert np.isnan(loss).tolist() == [False, True, True, False] and np.isfinite(loss[[0, 3]]).all()
    assert np.isnan(mean)


@pytest.mark.parametrize("op, prediction", [("binary_crossentropy", "probs"), ("sigmoid_cross_entropy", "logits")])
def test_targets_outside_have_no_loss_nor_gradient(op, prediction):
    inputs = {prediction: np.array([0.3, 0.6, 0.2]), "labels": np.array([1.5, -0.5, 1.0])}
    loss = registry.evaluate_loss(op, "exact", inputs, {}, "float64")
    grad, scale = registry.evaluate_grad(op, "exact", inputs, {}, "float64")
    assert np.isnan(loss).tolist() == [True, True, False]
    assert np.isnan(grad).tolist() == [True, True, False] and np.isnan(scale).tolist() == [True, True, False]


def test_a_loss_linear_in_its_labels_stays_defined_for_labels_summing_to_three():
    loss = registry.evaluate_loss("softmax_cross_entropy", "exact",
                                  {"logits": np.array([1.0, 2.0]), "labels": np.array([1.0, 2.0])}, {}, "float64")
    assert loss == pytest.approx(1.939785, rel=1e-6)  # the article's example


CASE = """schema: 1
cases:
  - name: outside
    op: binary_crossentropy
    inputs: {{probs: {probs}, labels: {labels}}}
{extra}"""


@pytest.mark.parametrize("probs, labels, key, opt_in", [
    ("[0.5, 1.5]", "[1.0, 0.0]", "inputs.probs", "invalid_probabilities"),
    ("[0.5, 0.5]", "[1.0, -0.5]", "inputs.labels", "invalid_labels"),
])
def test_a_case_holds_values_outside_only_when_it_says_so(tmp_path, probs, labels, key, opt_in):
    path = tmp_path / "c.yaml"
    path.write_text(CASE.format(probs=probs, labels=labels, extra=""))
    with pytest.raises(CaseError) as raised:
        load_case_file(path)
    assert f"case 'outside': key '{key}'" in str(raised.value) and f"set {opt_in}: true" in str(raised.value)
    path.write_text(CASE.format(probs=probs, labels=labels, extra=f"    {opt_in}: true\n"))
    (case,) = load_case_file(path)
    assert case.undefined
