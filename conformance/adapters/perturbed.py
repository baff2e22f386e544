"""A deliberate relative error, for proving that the suite notices one.

XENT_CONFORMANCE_PERTURB="torch:loss:1e-4" wraps torch's adapter so that its losses come
back multiplied by 1 + 1e-4 ("jax:grad_logits:0.01": its gradients by 1.01). The matrix
must then fail. Unset, adapters are used as they are: nothing here is on the path of a
normal run.
"""
from __future__ import annotations

import os

from conformance.adapters.api import Adapter, Result

PERTURB_ENV = "XENT_CONFORMANCE_PERTURB"


def requested(framework: str, environ=None) -> dict[str, float]:
    """quantity -> relative error asked for this framework (empty when none)."""
    spec = (os.environ if environ is None else environ).get(PERTURB_ENV, "")
    if not spec:
        return {}
    target, quantity, relative = spec.split(":")
    return {quantity: float(relative)} if target == framework else {}


class PerturbedAdapter(Adapter):
    """Delegates to an adapter and scales the results of the perturbed quantities."""

    def __init__(self, inner: Adapter, relative: dict[str, float]):
        self.inner = inner
        self.relative = relative
        self.framework = inner.framework
        self.capabilities = inner.capabilities
        self.packages = inner.packages

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def version(self):
        return self.inner.version()

    def package_versions(self):
        return self.inner.package_versions()

    def devices(self):
        return self.inner.devices()

    def kernels(self):
        return self.inner.kernels()  # the benchmarks time the framework as it is

    def environment(self):
        return {**self.inner.environment(), "perturbed": dict(self.relative)}

    def _scaled(self, result: Result, quantity: str) -> Result:
        factor = 1.0 + self.relative.get(quantity, 0.0)
        for each in result.all_modes():
            if each.raised is None:  # a mode that raised has no values to scale
                assert each.values is not None, "a mode that did not raise returns values"
                each.values = each.values * factor
        return result

    def loss(self, *args, **kwargs):
        return self._scaled(self.inner.loss(*args, **kwargs), "loss")

    def grad(self, *args, wrt="prediction", **kwargs):
        quantity = "grad_labels" if wrt == "labels" else "grad_logits"
        return self._scaled(self.inner.grad(*args, wrt=wrt, **kwargs), quantity)


def wrap(adapter: Adapter, environ=None) -> Adapter:
    relative = requested(adapter.framework, environ)
    return PerturbedAdapter(adapter, relative) if relative else adapter
