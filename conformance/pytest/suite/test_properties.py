"""Property-based differential checks: random shapes, values and options, every framework of
this process against the reference variant it declares.

Known divergences apply as to any case: the manifest recognises a behaviour by the options
and inputs where it occurs, not by case names. A property check fails only on a disagreement
that is neither honest rounding nor a recognised behaviour; a recognised behaviour that a
random case shows more mildly than its entry's model is no failure here (the cases under
cases/ hold the strict xfails). Deterministic by default (HYPOTHESIS_PROFILE=ci);
HYPOTHESIS_PROFILE=nightly explores more.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the property checks need hypothesis (the test extra)")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conformance.cases import Case
from conformance.core.checks import Check
from conformance.pytest.plugin import frameworks_of_this_run, runner_of_this_run

OPS = ("sigmoid_cross_entropy", "softmax_cross_entropy", "sparse_softmax_cross_entropy", "mean_squared_error")


@st.composite
def cases(draw, op):
    rows = draw(st.integers(1, 6))
    classes = draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.5, 3.0, 10.0]))
    reduction = draw(st.sampled_from(["none", "sum", "mean"]))
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, scale, (rows, classes))
    if op == "sigmoid_cross_entropy":
        labels = draw(st.sampled_from(["hard", "soft"]))
        y = (rng.uniform(size=logits.shape) < 0.5) * 1.0 if labels == "hard" else rng.uniform(size=logits.shape)
        inputs = {"logits": logits, "labels": y}
    elif op == "softmax_cross_entropy":
        y = rng.exponential(size=logits.shape)
        inputs = {"logits": logits, "labels": y / y.sum(axis=-1, keepdims=True)}
    elif op == "sparse_softmax_cross_entropy":
        inputs = {"logits": logits, "labels": rng.integers(0, classes, rows)}
    else:
        inputs = {"predictions": logits, "labels": rng.normal(0.0, scale, logits.shape)}
    return Case(name=f"property-{op}-{reduction}", op=op, path="<hypothesis>", inputs=inputs,
                options={"reduction": reduction})


def pytest_generate_tests(metafunc):
    if "framework" in metafunc.fixturenames:
        frameworks = frameworks_of_this_run(metafunc.config)
        metafunc.parametrize("framework", frameworks, ids=frameworks)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", OPS)
def test_framework_agrees_with_reference(framework, op, dtype, request):
    runner = runner_of_this_run(request.config)

    @given(case=cases(op))
    def check(case):
        for quantity in ("loss", "grad_logits", "grad_labels"):
            record = runner.run(Check(case, framework, dtype, "cpu", quantity))
            if record["reason"] == "not-installed":
                pytest.skip(f"[not-installed] {record['message']}")
            assert record["outcome"] not in ("failed", "error"), record["message"]

    check()
