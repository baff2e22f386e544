"""A golden's verdict against the reference: exact, rounded, truncated or inexact."""
import math

import numpy as np
import pytest

from conformance.core.goldens import as_printed, judge

LN1P_EXP_M1 = math.log1p(math.exp(-1.0))  # 0.31326168751822286


def test_printing_is_decimal_exact():
    assert as_printed(0.125, "ROUND_HALF_EVEN", digits=2) == 0.12  # a tie, to even
    assert as_printed(0.32396, "ROUND_DOWN", digits=4) == 0.3239
    assert as_printed(-0.909969, "ROUND_HALF_EVEN", decimals=3) == -0.910


@pytest.mark.parametrize("printed, digits, verdict", [
    (0.3133, 4, "rounded"), (0.3132, 4, "truncated"), (0.3134, 4, "inexact"), (0.31, 2, "rounded"),
    (0.3132617, None, "exact"), (0.31326, None, "inexact"),
])
def test_a_number_by_its_digits(printed, digits, verdict):
    assert judge(printed, LN1P_EXP_M1, "float32", digits) == verdict


def test_tensorflows_weighted_docstring_value_is_wrong_beyond_its_digits():
    true = math.log1p(math.exp(-10.0))  # logit -10, label 0: 4.5398899e-05
    assert judge(4.5776367e-05, true, "float32", digits=8) == "inexact"
    assert judge(4.5398899e-05, true, "float32", digits=8) == "rounded"


def test_an_array_is_as_good_as_its_worst_element():
    reference = np.array([0.0900305731703805, 0.24472847105479764, -0.3347590442251781])
    assert judge([0.09003057, 0.24472847, -0.33475904], reference, "float64", decimals=8) == "rounded"
    assert judge([0.09003057, 0.24472847, -0.33475905], reference, "float64", decimals=8) == "inexact"
    assert judge([0.0900, 0.2447, -0.3347], reference, "float64", decimals=4) == "truncated"
    assert judge([0.0, 0.2447], [0.0, 0.24472847], "float64", digits=4) == "rounded"  # a printed 0 is 0


def test_the_source_dtype_may_explain_the_digits():
    # float32(0.1 + 2**-27) prints to 9 digits as the float32 value does, not as the float64 one
    value = 0.1 + 2.0 ** -27
    shown = float(f"{float(np.float32(value)):.9g}")
    assert judge(shown, value, "float32", digits=9) == "rounded"


def test_the_report_judges_each_golden_once_beside_who_reproduces_it(monkeypatch):
    from conformance import adapters
    from conformance.adapters.numpy_adapter import NumpyAdapter
    from conformance.cases import Case, Pinned
    from conformance.core.checks import generate
    from conformance.core.runner import Runner
    from conformance.report.render import render

    doc_value = Pinned(4.5776367e-05, "float32", "exact", "TensorFlow's weighted_cross_entropy_with_logits doc",
                       digits=8)
    case = Case(name="doc-golden", op="sigmoid_cross_entropy", path="<test>",
                inputs={"logits": np.array([-10.0]), "labels": np.array([0.0])}, pinned=(doc_value,))
    monkeypatch.setattr(adapters, "load", lambda name: NumpyAdapter())
    records = [Runner([]).run(check) for check in generate([case], ["numpy"], ("cpu",)) if check.pinned]
    assert records[0]["golden"]["verdict"] == "inexact" and records[0]["outcome"] == "failed"
    records.append(dict(records[0], framework="elsewhere", outcome="skipped"))  # not run: not counted
    section = render({}, records, "md", with_plots=False).split("## Sources")[1].split("\n## ")[0]
    assert "Numbers printed by sources: 1" in section and "1 inexact" in section
    assert "| 4.5776367e-05 (to 8 digits) |" in section and "| inexact | 0 of 1 |" in section


def test_no_precision_or_magnitude_breaks_the_verdict():
    assert judge(0.5, 0.5, "float64", decimals=30) == "rounded"
    assert judge(1e30, 1e30, "float64", decimals=3) == "rounded"
    assert judge(np.inf, np.inf, "float32") == "exact" and judge(np.inf, -np.inf, "float32") == "inexact"


def test_the_printed_interval_is_a_tenth_as_wide_below_a_power_of_ten():
    from conformance.core import tolerance as tol

    centre, half = tol.printed_interval(1.0, 3)
    assert np.isclose(centre - half, 0.9995) and np.isclose(centre + half, 1.01)
    assert tol.Tolerance(0.0, 0.0, np.zeros(0)).as_record("float32")["abs"] == 0.0  # an empty quantity
