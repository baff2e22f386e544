"""One check = a case x framework x dtype x device x quantity; its id is stable across runs.

Quantities: loss; grad_logits and grad_labels, the gradient of the summed loss (grad_logits is
the prediction's, hidden for linear_cross_entropy, which adds grad_linear_weight and
grad_linear_bias, and their products vjp_linear_weight and vjp_linear_bias); vjp_logits
and vjp_labels, the vector-Jacobian product with a seeded random cotangent (reduction none),
which a backward that ignores its cotangent, or scales every row by the first one, fails;
and two properties of a training step (adapters' backward_probe), with that cotangent or, on
a reduced loss, a seeded scalar one (a backward that scales its saved gradient in place by a
scalar shows only there): inputs_intact, the inputs bitwise unchanged after a forward and two
backward passes, and second_backward, the second backward of one forward against the product.
"""
import zlib
from dataclasses import dataclass

import numpy as np

from conformance.cases import Case, Pinned
from reference.registry import OPS

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Check:
    case: Case
    framework: str
    dtype: str
    device: str
    quantity: str  # loss, grad_logits / grad_labels (d sum / d prediction or labels), vjp_*, jvp, a probe's
    pinned: Pinned | None = None  # compared with a source's number instead of the reference

    @property
    def id(self):
        kind = "::pinned" if self.pinned else ""
        return f"{self.case.name}::{self.quantity}::{self.framework}::{self.dtype}::{self.device}{kind}"

    @property
    def param_id(self):
        """The pytest id: carries the framework id, so `-k keras` selects Keras checks."""
        return f"{self.case.name}-{self.framework}-{self.dtype}-{self.device}-{self.quantity}" + (
            "-pinned" if self.pinned else "")


def has_reference_grad(op, quantity="grad_logits"):
    field = "grad_labels" if quantity == "grad_labels" else "grad"
    return any(getattr(v, field) is not None for v in OPS[op].variants.values())


GRADIENT_OF = {"grad_logits": "grad_logits", "grad_labels": "grad_labels",
               "vjp_logits": "grad_logits", "vjp_labels": "grad_labels", "jvp": "grad_logits",
               "second_backward": "grad_logits", "inputs_intact": "grad_logits",
               "grad_linear_weight": "grad_linear_weight", "grad_linear_bias": "grad_linear_bias",
               "vjp_linear_weight": "grad_linear_weight", "vjp_linear_bias": "grad_linear_bias"}
# What each gradient is taken with respect to (adapters' and the registry's `wrt`): grad_logits
# is the prediction's, whichever input that is (linear_cross_entropy: hidden).
WRT = {"grad_logits": "prediction", "grad_labels": "labels", "grad_linear_weight": "linear_weight",
       "grad_linear_bias": "linear_bias"}


def wrt_of(quantity: str) -> str:
    return WRT[GRADIENT_OF[quantity]]


def tensor_gradients(case) -> tuple[str, ...]:
    """The gradients with respect to an op's further tensors that the case has (linear_cross_entropy's
    weight and, where given, bias)."""
    return tuple(f"grad_{name}" for name in OPS[case.op].tensors if name in case.inputs)


# The quantities whose expected values are a vector-Jacobian product with the seeded cotangent.
VJP_QUANTITIES = ("vjp_logits", "vjp_labels", "second_backward", "vjp_linear_weight", "vjp_linear_bias")
PROBE_QUANTITIES = ("inputs_intact", "second_backward")
QUANTITIES = ("loss", "grad_logits", "grad_labels", "vjp_logits", "vjp_labels", "jvp", *PROBE_QUANTITIES,
              "grad_linear_weight", "grad_linear_bias", "vjp_linear_weight", "vjp_linear_bias")


def has_losses_to_weigh(case):
    """Whether a vector-Jacobian product says more than the gradient: unreduced losses, more than one."""
    if case.options.get("reduction", "none") != "none":
        return False
    prediction = case.prediction
    shape = case.labels.shape if OPS[case.op].head else prediction.shape  # one loss per label
    if OPS[case.op].class_axis and prediction.ndim:
        shape = np.delete(shape, case.options.get("axis", -1))
    return int(np.prod(shape)) > 1


def cotangent(case, dtype, shape, salt=""):
    """The seeded random cotangent of a case's losses (or, salted, a direction for forward
    mode), as float64 values the dtype holds. A scalar one (a reduced loss) lies in
    +-[2, 4]: far from 0 and from +-1, so that a gradient scaled by c twice (c^2) is told from
    one scaled once in every dtype."""
    from reference.dtypes import round_to

    rng = np.random.default_rng(zlib.crc32(f"{case.name}|{dtype}{salt}".encode()))
    if shape == ():
        return round_to(np.asarray(rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 4.0)), dtype)
    return round_to(rng.normal(0.0, 1.0, shape), dtype)


def direction(case, dtype):
    """The seeded direction of a forward-mode derivative: one value per prediction element."""
    return cotangent(case, dtype, case.prediction.shape, salt="|direction")


def generate(cases, frameworks, devices=DEVICES):
    for case in cases:
        for framework in frameworks:
            for device in devices:
                for dtype in case.dtypes:
                    yield Check(case, framework, dtype, device, "loss")
                    for quantity in ("grad_logits", "grad_labels"):
                        if case.grad and has_reference_grad(case.op, quantity):
                            yield Check(case, framework, dtype, device, quantity)
                    for quantity in tensor_gradients(case) if case.grad else ():
                        yield Check(case, framework, dtype, device, quantity)
                        if has_losses_to_weigh(case):  # a weight gradient scaled by one token's cotangent
                            yield Check(case, framework, dtype, device, quantity.replace("grad_", "vjp_", 1))
                    for quantity in ("vjp_logits", "vjp_labels"):
                        if case.grad and has_losses_to_weigh(case) and has_reference_grad(case.op, GRADIENT_OF[quantity]):
                            yield Check(case, framework, dtype, device, quantity)
                    if case.grad and has_reference_grad(case.op, "grad_logits") and (
                            has_losses_to_weigh(case) or case.options.get("reduction", "none") != "none"):
                        for quantity in PROBE_QUANTITIES:
                            yield Check(case, framework, dtype, device, quantity)
                    if case.grad and has_reference_grad(case.op, "grad_logits") and not OPS[case.op].head:
                        yield Check(case, framework, dtype, device, "jvp")  # (a linear head's: not yet)
                for pinned in case.pinned:
                    yield Check(case, framework, pinned.dtype, device, pinned.quantity, pinned)
