"""What the adapter API writes once for every adapter: version() from `packages`, the
composition found as a subclass, and the derivative asked as one Call, with adapters written
against the positional `grad` still served."""
import numpy as np
import pytest

from conformance.adapters.api import Adapter, Call, Capability, NotOffered, Result

X = np.array([[1.0, 2.0, 0.5]])
Y = np.array([1])


class OldStyle(Adapter):
    """An adapter written before Call: it overrides the positional grad."""
    framework = "old-style"
    packages = ("numpy",)
    capabilities = {"sparse_softmax_cross_entropy": Capability("handle")}

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction", cotangent=None):
        scale = 1.0 if cotangent is None else float(np.sum(cotangent))
        return Result(np.full_like(prediction, scale), f"{op}:{wrt}", device)


class NoCotangent(OldStyle):
    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
        return Result(np.zeros_like(prediction), dtype, device)


class NewStyle(Adapter):
    framework = "new-style"
    capabilities = {"sparse_softmax_cross_entropy": Capability("handle")}

    def gradient(self, call: Call) -> Result:
        return Result(np.asarray(call.prediction) * 2, f"{call.op}:{call.wrt}:{call.cotangent is not None}",
                      call.device)


class NewStyleComposed(NewStyle):
    composition = "log_softmax, then a gather"


def test_version_is_the_first_package_installed_version():
    from importlib import metadata

    assert OldStyle().version() == metadata.version("numpy")
    assert NewStyle().version() == "unknown"  # no packages declared


def test_the_composition_is_the_subclass_that_says_how():
    composed = NewStyle().composed()
    assert isinstance(composed, NewStyleComposed) and composed.composed() is None
    assert OldStyle().composed() is None


def test_an_old_grad_is_reached_through_a_call():
    result = OldStyle().gradient(Call("sparse_softmax_cross_entropy", X, Y, {}, "float64", "cpu", "labels",
                                      np.array([3.0])))
    assert result.dtype == "sparse_softmax_cross_entropy:labels" and result.values[0, 0] == 3.0


def test_a_new_gradient_is_reached_through_the_positional_grad():
    result = NewStyle().grad("sparse_softmax_cross_entropy", X, Y, {}, "float64", "cpu", wrt="prediction",
                             cotangent=np.array([1.0]))
    assert result.dtype == "sparse_softmax_cross_entropy:prediction:True"
    np.testing.assert_array_equal(result.values, X * 2)


def test_a_cotangent_the_old_grad_cannot_take_is_not_offered():
    adapter = NoCotangent()
    assert adapter.gradient(Call("sparse_softmax_cross_entropy", X, Y, {}, "float64", "cpu")).values.shape == X.shape
    with pytest.raises(NotOffered):
        adapter.gradient(Call("sparse_softmax_cross_entropy", X, Y, {}, "float64", "cpu", cotangent=np.ones(1)))


def test_an_adapter_with_neither_has_no_gradient():
    class LossOnly(Adapter):
        framework = "loss-only"

    with pytest.raises(NotOffered, match="no automatic differentiation"):
        LossOnly().grad("sparse_softmax_cross_entropy", X, Y, {}, "float64", "cpu")
    with pytest.raises(NotOffered, match="no automatic differentiation"):
        LossOnly().gradient(Call("sparse_softmax_cross_entropy", X, Y, {}, "float64", "cpu"))
