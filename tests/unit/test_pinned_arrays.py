"""Pinned arrays and gradients: a source's printed array of unreduced losses, or of a gradient,
reproduced element by element to its printed precision; a shape or a quantity that cannot
hold is refused when the file loads, naming file, case and key."""
import textwrap

import jsonschema
import numpy as np
import pytest

from conformance import adapters
from conformance.adapters.api import Adapter, Capability, Result
from conformance.adapters.numpy_adapter import NumpyAdapter
from conformance.cases import CaseError, load_case_file
from conformance.core import tolerance as tol
from conformance.core.checks import generate
from conformance.core.runner import Runner

# softmax([1, 2, 3]) - onehot(2) = [0.09003057, 0.24472847, -0.33475904] (float64: 0.0900305731703805,
# 0.24472847105479764, -0.3347590442251781); the losses of [[1, 2, 3], [1, 2, 3]] with labels 2 and 0:
# 0.40760596444438, 2.40760596444438.
HEADER = """
schema: 1
cases:
  - name: golden
    op: sparse_softmax_cross_entropy
    inputs: {logits: [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], labels: [2, 0]}
    pinned:
"""


def load(tmp_path, pinned):
    path = tmp_path / "golden.yaml"
    path.write_text(textwrap.dedent(HEADER) + textwrap.indent(textwrap.dedent(pinned), "      "))
    return path, load_case_file(path)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Analytic(Adapter):
    """softmax(z) - onehot(label), in float64: a gradient for the pinned gradient to meet."""
    framework = "numpy"
    capabilities = {"sparse_softmax_cross_entropy": Capability(lambda z, y, o: None, dtypes=("float64",))}

    def version(self):
        return "1.0"

    def loss(self, op, prediction, labels, options, dtype, device):
        z = np.asarray(prediction)
        return Result(-np.log(np.take_along_axis(_softmax(z), labels[:, None], axis=-1))[:, 0], "float64", "cpu")

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction", cotangent=None):
        z = np.asarray(prediction)
        return Result(_softmax(z) - np.eye(z.shape[-1])[labels], "float64", "cpu")


def run(case, monkeypatch, adapter=NumpyAdapter):
    monkeypatch.setattr(adapters, "load", lambda name: adapter())
    checks = [c for c in generate([case], ["numpy"], ("cpu",)) if c.pinned]
    return [Runner(manifest=[]).run(check) for check in checks]


def test_a_printed_gradient_is_reproduced_element_by_element(tmp_path, monkeypatch):
    _, (case,) = load(tmp_path, """
        - value: [[0.09003057, 0.24472847, -0.33475904], [-0.90996943, 0.24472847, 0.66524096]]
          quantity: grad_logits
          dtype: float64
          variant: exact
          source: softmax(z) - onehot(label), printed by numpy to 8 decimals
          decimals: 8
        """)
    (record,) = run(case, monkeypatch, Analytic)
    assert record["quantity"] == "grad_logits" and record["kind"] == "pinned"
    assert record["outcome"] == "passed", record["message"]
    assert record["tolerance"]["abs"] == pytest.approx(0.75e-8)  # rounded or truncated: 3/4 of the last decimal


def test_one_wrong_element_fails_and_the_message_says_where(tmp_path, monkeypatch):
    _, (case,) = load(tmp_path, """
        - value: [0.40761, 2.4077]
          dtype: float64
          variant: exact
          source: a docstring printing 4 digits, with a typo in the second loss
          digits: 5
        """)
    (record,) = run(case, monkeypatch)
    assert record["outcome"] == "failed"
    assert "worst at index [1]" in record["message"] and "array of shape [2] to 5 digits" in record["message"]


def test_a_number_still_stands_for_every_element(tmp_path, monkeypatch):
    _, (case,) = load(tmp_path, """
        - {value: 0.40760596444438, dtype: float64, variant: exact, source: the first loss only}
        """)
    (record,) = run(case, monkeypatch)
    assert record["outcome"] == "failed"  # the second loss is 2.41: a number pins every element


@pytest.mark.parametrize("pinned, key, problem", [
    ("- {value: [0.4, 2.4, 1.0], dtype: float32, variant: exact, source: s}",
     "pinned[0].value", r"has shape \[3\], but the loss of this case has shape \[2\]"),
    ("- {value: [0.4, 2.4], quantity: grad_logits, dtype: float32, variant: exact, source: s}",
     "pinned[0].value", r"has shape \[2\], but the grad_logits of this case has shape \[2, 3\]"),
    ("- {value: [0.4, 2.4], quantity: hessian, dtype: float32, variant: exact, source: s}",
     "pinned[0].quantity", "unknown quantity 'hessian'"),
    ("- {value: [0.4, [2.4]], dtype: float32, variant: exact, source: s}", "pinned[0].value", "ragged"),
    ("- {value: [0.41, 2.4], dtype: float32, variant: exact, source: s, decimals: 1}",
     "pinned[0].decimals", "more than 1 decimal places"),
    ("- {value: [0.4, 2.4], dtype: float32, variant: exact, source: s, decimals: 1, digits: 2}",
     "pinned[0].decimals", "not both"),
])
def test_a_pinned_value_that_cannot_hold_is_refused_naming_the_key(tmp_path, pinned, key, problem):
    path = tmp_path / "golden.yaml"
    path.write_text(textwrap.dedent(HEADER) + "      " + pinned + "\n")
    with pytest.raises(CaseError, match=f"golden.yaml.*case 'golden': key '{key.replace('[', '.').replace(']', '.')}"
                                        f".*{problem}"):
        load_case_file(path)


def test_a_gradient_golden_needs_a_gradient(tmp_path):
    path = tmp_path / "golden.yaml"
    path.write_text(textwrap.dedent(HEADER).replace("    pinned:", "    grad: false\n    pinned:")
                    + "      - {value: 0.1, quantity: grad_logits, dtype: float32, variant: exact, source: s}\n")
    with pytest.raises(CaseError, match="key 'pinned.0..quantity'.*grad: false"):
        load_case_file(path)


def test_printed_intervals_element_by_element():
    centre, half = tol.printed_interval(np.array([0.25, -1.5, 0.0]), decimals=2)
    assert np.allclose(centre, [0.2525, -1.5025, 0.0]) and np.allclose(half, [0.0075, 0.0075, 0.01])
    centre, half = tol.printed_interval(np.array([0.25, 0.0]), digits=2)
    assert np.allclose(centre, [0.2525, 0.0]) and np.allclose(half, [0.0075, 0.0])  # a printed 0 is 0


def test_the_json_schema_takes_pinned_arrays_and_refuses_an_unknown_quantity(tmp_path):
    from conformance import schemas
    from conformance.cases import yamlio

    path, _ = load(tmp_path, """
        - {value: [[0.09, 0.24, -0.33], [-0.91, 0.24, 0.67]], quantity: grad_logits, dtype: float64,
           variant: exact, source: s, decimals: 2}
        """)
    document = yamlio.load(path.read_text())
    jsonschema.validate(document, schemas.case_file_schema())
    document["cases"][0]["pinned"][0]["quantity"] = "hessian"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schemas.case_file_schema())
