"""One check = a case x framework x dtype x device x quantity; its id is stable across runs."""
from dataclasses import dataclass

from conformance.cases import Case, Pinned
from reference.registry import OPS

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Check:
    case: Case
    framework: str
    dtype: str
    device: str
    quantity: str  # loss, grad_logits (d/d prediction) or grad_labels (d/d soft labels)
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
    field = "grad" if quantity == "grad_logits" else "grad_labels"
    return any(getattr(v, field) is not None for v in OPS[op].variants.values())


def generate(cases, frameworks, devices=DEVICES):
    for case in cases:
        for framework in frameworks:
            for device in devices:
                for dtype in case.dtypes:
                    yield Check(case, framework, dtype, device, "loss")
                    for quantity in ("grad_logits", "grad_labels"):
                        if case.grad and has_reference_grad(case.op, quantity):
                            yield Check(case, framework, dtype, device, quantity)
                for pinned in case.pinned:
                    yield Check(case, framework, pinned.dtype, device, "loss", pinned)
