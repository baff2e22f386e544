"""A golden value printed to N significant digits is reproduced when the framework's value
rounds or truncates to it, and by nothing further off."""
import textwrap

import numpy as np
import pytest

from conformance import adapters
from conformance.adapters.numpy_adapter import NumpyAdapter
from conformance.cases import Case, CaseError, Pinned, load_case_file
from conformance.core import tolerance as tol
from conformance.core.checks import Check
from conformance.core.runner import Runner


def accepts(value, digits, actual):
    centre, half_width = tol.printed_interval(value, digits)
    return abs(actual - centre) <= half_width


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_printed_interval_holds_rounding_and_truncation_only(sign):
    printed = sign * 3.98559
    assert accepts(printed, 6, sign * 3.985594)  # rounds to it
    assert accepts(printed, 6, sign * 3.9855851)  # rounds up to it
    assert accepts(printed, 6, sign * 3.9855999)  # truncates to it
    assert not accepts(printed, 6, sign * 3.985600001)  # neither
    assert not accepts(printed, 6, sign * 3.985584)  # neither
    assert accepts(sign * 4.5776367e-05, 8, sign * 4.57763672e-05)
    assert not accepts(sign * 4.5776367e-05, 8, sign * 4.5398899e-05)  # TF's doc value against the true loss


def pinned_case(pinned):
    return Case(name="golden", op="sigmoid_cross_entropy", path="<test>",
                inputs={"logits": np.array([1.0]), "labels": np.array([1.0])}, pinned=(pinned,))


@pytest.mark.parametrize("printed, outcome", [(0.3132, "passed"), (0.3133, "passed"), (0.3134, "failed"),
                                              (0.3131, "failed")])
def test_a_golden_printed_to_four_digits_is_reproduced_by_rounding_or_truncation(monkeypatch, printed, outcome):
    monkeypatch.setattr(adapters, "load", lambda name: NumpyAdapter())
    pinned = Pinned(printed, "float32", "exact", "a docstring printing 4 digits", digits=4)
    record = Runner(manifest=[]).run(Check(pinned_case(pinned), "numpy", "float32", "cpu", "loss", pinned))
    assert record["outcome"] == outcome, record["message"]
    if outcome == "failed":
        assert "to 4 digits" in record["message"]


def test_without_digits_a_golden_is_exact_to_a_few_ulp(monkeypatch):
    monkeypatch.setattr(adapters, "load", lambda name: NumpyAdapter())
    pinned = Pinned(0.3133, "float32", "exact", "the same number, read as exact")
    record = Runner(manifest=[]).run(Check(pinned_case(pinned), "numpy", "float32", "cpu", "loss", pinned))
    assert record["outcome"] == "failed"


CASE = """
schema: 1
cases:
  - name: golden
    op: sigmoid_cross_entropy
    inputs: {{logits: [1.0], labels: [1.0]}}
    pinned:
      - {{value: {value}, dtype: float32, variant: exact, source: "a docstring", digits: {digits}}}
"""


@pytest.mark.parametrize("value, digits, problem", [(0.31326, 4, "more than 4 significant digits"),
                                                    (0.0, 3, "no significant digits"),
                                                    (0.3133, 0, "expected 1 to 17")])
def test_digits_that_do_not_fit_the_printed_value_are_refused(tmp_path, value, digits, problem):
    path = tmp_path / "golden.yaml"
    path.write_text(textwrap.dedent(CASE.format(value=value, digits=digits)))
    with pytest.raises(CaseError, match=f"case 'golden': key 'pinned\\[0\\].digits': .*{problem}"):
        load_case_file(path)


def test_a_golden_with_digits_loads(tmp_path):
    path = tmp_path / "golden.yaml"
    path.write_text(textwrap.dedent(CASE.format(value=0.3133, digits=4)))
    (case,) = load_case_file(path)
    assert case.pinned[0].digits == 4


def answering(value):
    class Answering(NumpyAdapter):
        def loss(self, op, prediction, labels, options, dtype, device):
            return adapters.Result(np.array([value]), dtype, "cpu")
    return Answering()


@pytest.mark.parametrize("ulps, outcome", [(2, "passed"), (-2, "passed"), (12, "failed")])
def test_a_printed_golden_allows_the_pinned_ulps_beyond_its_digits(monkeypatch, ulps, outcome):
    """0.3132617 to seven decimals covers [0.31326165, 0.31326175]; a float32 result a couple
    of ulps beyond that, as honest rounding gives, still reproduces it."""
    edge = np.float32(0.31326175 if ulps > 0 else 0.31326165)
    value = float(edge + np.sign(ulps) * abs(ulps) * np.spacing(edge))
    monkeypatch.setattr(adapters, "load", lambda name: answering(value))
    pinned = Pinned(0.3132617, "float32", "exact", "a doctest", decimals=7)
    record = Runner(manifest=[]).run(Check(pinned_case(pinned), "numpy", "float32", "cpu", "loss", pinned))
    assert record["outcome"] == outcome, record["message"]


@pytest.mark.parametrize("printed, outcome, reason", [(0.3134, "skipped", "inexact-golden"),
                                                      (0.3133, "failed", "golden-marking")])
def test_a_golden_marked_inexact_holds_no_framework_and_the_marking_is_checked(monkeypatch, printed, outcome,
                                                                               reason):
    monkeypatch.setattr(adapters, "load", lambda name: answering(0.0))  # no framework is asked
    pinned = Pinned(printed, "float32", "exact", "a test", digits=4, inexact="passes only by a loose tolerance")
    record = Runner(manifest=[]).run(Check(pinned_case(pinned), "numpy", "float32", "cpu", "loss", pinned))
    assert (record["outcome"], record["reason"]) == (outcome, reason), record["message"]
    assert record["golden"]["verdict"] == ("inexact" if outcome == "skipped" else "rounded")


def test_an_inexact_marking_says_why(tmp_path):
    path = tmp_path / "goldens.yaml"
    path.write_text(CASE.format(value=0.3134, digits=4).replace('digits: 4}', 'digits: 4, inexact: " "}'))
    with pytest.raises(CaseError, match="inexact"):
        load_case_file(path)


@pytest.mark.parametrize("answer, outcome", [(0.3132617 + 0.9e-6, "passed"), (0.3132617 + 1.6e-6, "failed")])
def test_a_golden_with_its_sources_tolerance_is_reproduced_within_it(monkeypatch, answer, outcome):
    """assert_allclose(rtol=1e-6, atol=1e-6) around 0.3132617: |x - value| <= 1.31e-6, plus
    the pinned ULPs (4 x 3e-8)."""
    monkeypatch.setattr(adapters, "load", lambda name: answering(answer))
    pinned = Pinned(0.3132617, "float32", "exact", "a test", rel=1e-6, abs=1e-6)
    record = Runner(manifest=[]).run(Check(pinned_case(pinned), "numpy", "float32", "cpu", "loss", pinned))
    assert record["outcome"] == outcome, record["message"]
    assert record["golden"]["verdict"] == "exact" and "within rel 1e-06 and abs 1e-06" in record["golden"]["precision"]


@pytest.mark.parametrize("printed, verdict", [(0.3132617, "exact"), (0.313262, "within"), (0.31328, "inexact")])
def test_a_golden_with_its_sources_tolerance_is_judged_exact_within_or_inexact(printed, verdict):
    from conformance.core.goldens import judge
    true = 0.31326168751822286
    assert judge(printed, true, "float32", within=1e-6 + 1e-6 * abs(printed)) == verdict


@pytest.mark.parametrize("extra, problem", [("rel: -1.0e-6", "non-negative"), ("rel: 0, abs: 0", "exact number"),
                                            ("rel: 1.0e-6, digits: 4", "one precision")])
def test_a_sources_tolerance_is_checked(tmp_path, extra, problem):
    path = tmp_path / "goldens.yaml"
    text = CASE.format(value=0.3133, digits=4).replace("digits: 4}", extra + "}")
    path.write_text(text)
    with pytest.raises(CaseError, match=problem):
        load_case_file(path)
