"""The suite notices a broken framework: a 1e-4 relative error fails the checks it touches."""
import numpy as np
import pytest

from conformance.core import checks
from conformance.cases import load_cases
from conformance import adapters
from conformance.adapters.perturbed import PERTURB_ENV
from conformance.core.runner import Runner


@pytest.fixture(scope="module")
def cases():
    return [c for c in load_cases(["cases"]) if c.name.startswith(("sigmoid-random", "softmax-random", "sparse-random",
                                                                   "mse-random", "bce-random", "categorical-random"))]


@pytest.fixture(autouse=True)
def unperturbed_afterwards():
    """Set up before monkeypatch, so torn down after it has restored the environment: the
    registry this module configured with perturbed adapters must not reach later tests."""
    yield
    adapters.configure()


def outcomes(cases, monkeypatch, perturb):
    if perturb:
        monkeypatch.setenv(PERTURB_ENV, perturb)
    else:
        monkeypatch.delenv(PERTURB_ENV, raising=False)
    adapters.configure()  # adapters are wrapped for the perturbation when they load
    runner = Runner(manifest=[])
    # float16 and bfloat16 resolve no 1e-4 error (their epsilons are 1e-3 and 8e-3)
    generated = [c for c in checks.generate(cases, ["numpy"], ("cpu",))
                 if c.quantity == "loss" and c.dtype in ("float32", "float64")]
    return [runner.run(c)["outcome"] for c in generated]


def test_numpy_passes_unperturbed(cases, monkeypatch):
    assert set(outcomes(cases, monkeypatch, None)) == {"passed"}


@pytest.mark.parametrize("relative", ["1e-4", "-1e-4"])
def test_a_relative_loss_error_of_1e_minus_4_fails_every_check(cases, monkeypatch, relative):
    found = outcomes(cases, monkeypatch, f"numpy:loss:{relative}")
    assert found and set(found) == {"failed"}


class TwoModes:
    """The NumPy adapter run 'two ways', the second off by a relative error, as JAX's eager
    path could be while its jitted path is right."""

    def __init__(self, inner, relative):
        self.inner, self.relative = inner, relative

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def loss(self, *args):
        first = self.inner.loss(*args)
        first.mode = "jit"
        second = self.inner.loss(*args)
        second.mode, second.values = "eager", second.values * (1 + self.relative)
        first.others = [second]
        return first


@pytest.mark.parametrize("relative, outcome", [(0.0, "passed"), (1e-4, "failed")])
def test_every_mode_of_a_framework_is_judged(cases, monkeypatch, relative, outcome):
    from conformance.adapters import numpy_adapter

    monkeypatch.delenv(PERTURB_ENV, raising=False)
    monkeypatch.setattr(adapters, "load", lambda name: TwoModes(numpy_adapter.NumpyAdapter(), relative))
    check = next(c for c in checks.generate(cases, ["numpy"], ("cpu",))
                 if c.quantity == "loss" and c.dtype == "float64")
    record = Runner(manifest=[]).run(check)
    assert record["outcome"] == outcome
    assert set(record["modes"]) == {"jit", "eager"}
    assert record["modes"]["jit"]["passed"]
    assert record["modes"]["eager"]["passed"] == (relative == 0.0)
    if outcome == "failed":
        assert record["message"].startswith("numpy (eager) ")


def test_the_matrix_counts_where_modes_differ():
    from conformance.results import summary

    records = [{"framework": "jax", "modes": {"jit": {"passed": True, "max_ulp_err": 1.0, "same_as_eager": same},
                                              "eager": {"passed": eager, "max_ulp_err": ulp}}}
               for eager, ulp, same in [(True, 1.0, True), (True, 3.0, False), (False, "inf", True)]]
    records.append({"framework": "torch"})
    assert summary.modes(records) == ["jax ran eager and jit: ULP errors differ in 2 of 3 checks, the verdict in 1; "
                                      "the relative view (torch._dynamo.utils.same) rejects 1"]


def test_the_relative_view_is_the_rule_of_dynamo_same():
    """Accepted: allclose to eager, or an RMS error against float64 at most 2x eager's (3x below
    1,000 elements or in half precision) plus 1e-5; a compiled error beyond that is rejected."""
    from conformance.core import relative_view

    reference = np.linspace(1.0, 2.0, 2000)
    eager = reference + 1e-3
    assert relative_view.same(reference, eager, eager + 5e-5, "float32")  # allclose to eager
    assert relative_view.same(reference, eager, reference - 2e-3, "float32")  # 2x eager's error
    assert not relative_view.same(reference, eager, reference + 2.2e-3, "float32")
    assert relative_view.same(reference, eager, reference + 2.9e-3, "bfloat16")  # 3x in half precision
    assert relative_view.same(reference[:10], eager[:10], reference[:10] + 2.9e-3, "float32")  # 3x: few elements
    assert not relative_view.same(reference, eager, eager[:10], "float32")
    # a result of another shape (a loss of shape [4, 1] for [4]) has no RMS error: the verdict names the shape
    assert np.isnan(relative_view.rms_error(np.ones(4), np.ones((4, 1))))
