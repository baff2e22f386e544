"""Every quantity a check can be of, one row each: what it is, which cases get it, which adapter
call produces it and how its expected value is obtained.

Quantities: loss; grad_logits and grad_labels, the gradient of the summed loss (grad_logits is
the prediction's, hidden for linear_cross_entropy, which adds grad_linear_weight and
grad_linear_bias, and their products vjp_linear_weight and vjp_linear_bias); vjp_logits and
vjp_labels, the vector-Jacobian product with a seeded random cotangent (reduction none), which
a backward that ignores its cotangent, or scales every row by the first one, fails; jvp, the
forward-mode derivative along a seeded direction; two properties of a training step
(adapters' backward_probe), with that cotangent or, on a reduced loss, a seeded scalar one (a
backward that scales its saved gradient in place by a scalar shows only there): inputs_intact,
the inputs bitwise unchanged after a forward and two backward passes, and second_backward, the
second backward of one forward against the product; and loss_dtype, the dtype the loss came
back in, judged apart from its value.

Adding a quantity is a row here; where it needs a value the reference does not yet give, a
kind in expected.py; where it needs a framework call no adapter makes yet, an adapter method.
The table reads only the reference registry, so that every other module may read it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import numpy.typing as npt

from reference.registry import OPS

if TYPE_CHECKING:  # both read this table: imported for the annotations only
    from conformance.adapters.api import Adapter, Result
    from conformance.cases.loader import Case
    from conformance.sharded.layouts import Layout


@dataclass(frozen=True)
class CallInputs:
    """What an adapter call is made with: the arguments every call takes (op, prediction,
    labels, options, dtype, device) and, computed only where a quantity asks, the seeded
    cotangent of the losses and the seeded direction of a forward-mode derivative; the layout
    the inputs are split by across ranks (None: not split)."""

    framework: str
    args: tuple[str, np.ndarray, np.ndarray, Mapping[str, Any], str, str]
    cotangent: Callable[[], np.ndarray]
    direction: Callable[[], np.ndarray]
    layout: Layout | None = None

    @property
    def sharded(self) -> dict[str, Any]:
        """The keyword a call adds where the inputs are split: adapters that take no layout never see it."""
        return {"layout": self.layout} if self.layout else {}


@dataclass(frozen=True)
class Quantity:
    """One quantity. `gradient` names the analytic gradient its expected value is built from
    (None: the loss's value), which a variant must have for the check to run; `wrt` what that
    gradient is taken with respect to (prediction, labels, or an op's further tensor)."""

    name: str
    label: str  # how the report names it
    order: int  # its place in the report's tables
    gradient: str | None
    wrt: str | None
    call: Callable[[Any, Quantity, CallInputs], Any]  # (adapter, this row, inputs) -> the adapter's Result
    expected: str  # how expected.py obtains its value: loss, gradient, vjp, jvp, inputs, dtype, agreement
    # or difference
    applies: Callable[[Case], bool]  # case -> whether the case gets this check (per dtype and device)
    pinnable: bool = False  # a case file may pin a source's number of it
    vjp: bool = False  # its expected value is the product with the seeded cotangent
    probe: bool = False  # a property of a training step: one way (the adapter's first mode), not every mode
    modelled: bool = True  # a behaviour model of the arithmetic can say what a framework computes here
    shares: str | None = None  # the quantity whose expected value it is too (one product, expected twice)
    # inputs split across ranks only: layout -> whether this case gets it under that layout
    # (None: a quantity of every check, split or not)
    sharded: Callable[[Case, Layout], bool] | None = None

    def applies_under(self, case: Case, layout: Layout | None) -> bool:
        """Whether a check of this case under this layout (None: not split) is of this quantity."""
        if self.sharded is None:
            return self.applies(case)
        return layout is not None and self.applies(case) and self.sharded(case, layout)

    @property
    def expected_as(self) -> str:
        """The quantity whose reference value this one is compared with (and cached under)."""
        return self.shares or self.name


# --- which cases get a check --------------------------------------------------------------


def has_reference_grad(op: str, gradient: str = "grad_logits") -> bool:
    """Whether any of the op's reference variants has this gradient (an op's further tensors
    are differentiated wherever the prediction is)."""
    field = "grad_labels" if gradient == "grad_labels" else "grad"
    return any(getattr(v, field) is not None for v in OPS[op].variants.values())


def has_losses_to_weigh(case: Case) -> bool:
    """Whether a vector-Jacobian product says more than the gradient: unreduced losses, more than one."""
    if case.options.get("reduction", "none") != "none":
        return False
    prediction = case.prediction
    # one loss per label
    shape: tuple[int, ...] | np.ndarray = case.labels.shape if OPS[case.op].head else prediction.shape
    if OPS[case.op].class_axis and prediction.ndim:
        shape = np.delete(shape, case.options.get("axis", -1))
    return int(np.prod(shape)) > 1


def _differentiated(gradient: str) -> Callable[[Case], bool]:
    return lambda case: case.grad and has_reference_grad(case.op, gradient)


def _weighed(gradient: str) -> Callable[[Case], bool]:
    return lambda case: case.grad and has_losses_to_weigh(case) and has_reference_grad(case.op, gradient)


def _has_tensor(tensor: str, weighed: bool = False) -> Callable[[Case], bool]:
    """An op's further tensor that the case gives (linear_cross_entropy's weight, its bias where given)."""
    return lambda case: bool(case.grad and tensor in OPS[case.op].tensors and tensor in case.inputs
                             and (not weighed or has_losses_to_weigh(case)))


def _probed(case: Case) -> bool:
    """A training step's backward: with the cotangent of unreduced losses, or a reduced loss's scalar one."""
    return bool(case.grad and has_reference_grad(case.op, "grad_logits") and (
        has_losses_to_weigh(case) or case.options.get("reduction", "none") != "none"))


def _forward_mode(case: Case) -> bool:
    return bool(case.grad and has_reference_grad(case.op, "grad_logits") and not OPS[case.op].head)  # a head's: not yet


def _whole_on_every_rank(case: Case, layout: Layout) -> bool:
    """Several ranks that each hold the whole loss: a vocabulary split, or a reduced loss (a batch
    or sequence split of unreduced losses leaves each rank its own tokens')."""
    return layout.ranks > 1 and (layout.axis == "vocab" or case.options.get("reduction", "none") != "none")


def _defined(case: Case) -> bool:
    """Inputs in the op's domain: on undefined ones a refusal conforms, and says nothing of a dtype."""
    return not case.undefined


# --- which adapter call produces it -------------------------------------------------------


def _wrt(quantity: Quantity) -> str:
    """The input a derivative's row takes it with respect to (each such row names one)."""
    if quantity.wrt is None:
        raise ValueError(f"{quantity.name} is not a derivative")
    return quantity.wrt


def call_loss(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    return adapter.loss(*given.args, **given.sharded)


def call_grad(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    return adapter.grad(*given.args, wrt=_wrt(quantity), **given.sharded)


def call_vjp(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    """adapter.grad with the seeded cotangent (float64 values the dtype holds)."""
    from conformance.adapters.api import NotOffered  # the adapter API reads this table: imported when called

    cotangent = given.cotangent()
    if "cotangent" not in inspect.signature(adapter.grad).parameters:
        raise NotOffered(f"{given.framework}'s grad takes no cotangent (vector-Jacobian products)")
    return adapter.grad(*given.args, wrt=_wrt(quantity), cotangent=cotangent, **given.sharded)


def call_jvp(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    return adapter.jvp(*given.args, direction=given.direction(), **given.sharded)


def call_probe(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    """A backward probe (on copies of the inputs): the second backward's product, or the inputs
    read back as one vector (probed_inputs)."""
    from conformance.adapters.api import NotOffered, Result

    probe = adapter.backward_probe(*given.args, cotangent=given.cotangent(), **given.sharded)
    if quantity.name == "second_backward":
        return probe.second
    op, options, dtype = given.args[0], given.args[3], given.args[4]  # values only: the dtype is the inputs'
    tensors = [name for name in OPS[op].tensors if name in options]
    missing = [name for name in tensors if name not in probe.tensors_after]
    if missing:
        raise NotOffered(f"the probe read back no {', '.join(missing)}")
    after = [probe.prediction_after, *(probe.tensors_after[name] for name in tensors), probe.labels_after]
    return Result(probed_inputs(*after), dtype, probe.first.device, probe.first.mode)


def call_loss_dtype(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    """The loss call, each mode's value set aside: what is judged is the dtype it returned."""
    returned = adapter.loss(*given.args, **given.sharded)
    modes = [replace(each, values=None if each.values is None else np.zeros(()), others=[])
             for each in returned.all_modes()]
    return replace(modes[0], others=modes[1:])


def call_rank_agreement(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    """The loss call, each mode's value replaced by how far its ranks' own values lie from rank
    0's: 0 where every rank holds the same bits (NaN where rank 0 has NaN), else the largest
    difference (inf where one rank has NaN and another not)."""
    from conformance.adapters.api import NotOffered

    returned = adapter.loss(*given.args, **given.sharded)
    modes = []
    for each in returned.all_modes():
        if each.values is not None and each.per_rank is None:
            raise NotOffered(f"{given.framework} returns no rank's own value")
        spread = None if each.values is None else np.asarray(rank_spread(each.per_rank or []))
        # the dtype the loss came back in is loss_dtype's to judge: the spread is read in the dtype under test
        modes.append(replace(each, values=spread, dtype=given.args[4] if spread is not None else each.dtype,
                             others=[]))
    return replace(modes[0], others=modes[1:])


def call_same_as_one_rank(adapter: Adapter, quantity: Quantity, given: CallInputs) -> Result:
    """The loss under the check's layout and under one rank of the same axis, each mode's value
    replaced by their difference: 0 where both hold the same value (NaN and NaN, or the same
    infinity, included), NaN where only one of them is NaN. A mode that raised either way raised.
    Read in the dtype under test: the dtype the loss came back in is loss_dtype's to judge."""
    from conformance.sharded.layouts import Layout

    assert given.layout is not None, "a check of several ranks"
    split = adapter.loss(*given.args, **given.sharded).all_modes()
    one_rank = replace(given, layout=Layout(given.layout.axis, 1))
    whole = adapter.loss(*given.args, **one_rank.sharded).all_modes()
    if [each.mode for each in split] != [each.mode for each in whole]:
        raise RuntimeError(f"the modes at {given.layout.name} and at one rank differ: "
                           f"{[each.mode for each in split]} and {[each.mode for each in whole]}")
    modes = []
    for many, one in zip(split, whole):
        if many.values is None or one.values is None:
            raised = many.raised if many.values is None else RuntimeError(f"at one rank: {one.raised}")
            modes.append(replace(many, values=None, raised=raised, others=[]))
            continue
        modes.append(replace(many, values=difference(many.values, one.values), dtype=given.args[4], others=[]))
    return replace(modes[0], others=modes[1:])


def difference(values: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """values - baseline, element by element: 0 where both are the same (NaN and NaN, the same
    infinity), NaN where only one is NaN, an infinity where only one is infinite or they differ."""
    values, baseline = np.asarray(values, np.float64), np.asarray(baseline, np.float64)
    if values.shape != baseline.shape:
        return np.full(np.broadcast_shapes(values.shape, baseline.shape), np.nan)
    same = (values == baseline) | (np.isnan(values) & np.isnan(baseline))
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, values - baseline)


def rank_spread(per_rank: list[np.ndarray]) -> float:
    """The largest difference of any rank's value from rank 0's, element by element: 0 for the
    same bits (NaN and NaN included), inf where only one of the two is NaN."""
    first = np.asarray(per_rank[0], np.float64)
    spread = 0.0
    for other in per_rank[1:]:
        other = np.asarray(other, np.float64)
        if other.shape != first.shape:
            return float("inf")
        same = (first == other) | (np.isnan(first) & np.isnan(other))
        with np.errstate(invalid="ignore"):
            apart = np.where(same, 0.0, np.abs(first - other))
        apart = np.where(np.isnan(apart), np.inf, apart)
        spread = max(spread, float(np.max(apart, initial=0.0)))
    return spread


def probed_inputs(*arrays: npt.ArrayLike) -> np.ndarray:
    """The inputs (prediction, further tensors, labels) as one float64 vector: what inputs_intact
    compares (labels are integers below 2**53 or floats the dtype holds: converted exactly)."""
    return np.concatenate([np.asarray(array, np.float64).ravel() for array in arrays])


# --- the table: in the order checks are generated (per case, device and dtype) -------------

_ROWS = (
    Quantity("loss", "loss", 0, None, None, call_loss, "loss", lambda case: True, pinnable=True),
    Quantity("loss_dtype", "dtype of the loss", 1, None, None, call_loss_dtype, "dtype", _defined,
             modelled=False),
    Quantity("grad_logits", "gradient", 2, "grad_logits", "prediction", call_grad, "gradient",
             _differentiated("grad_logits"), pinnable=True),
    Quantity("grad_labels", "gradient (labels)", 3, "grad_labels", "labels", call_grad, "gradient",
             _differentiated("grad_labels"), pinnable=True),
    Quantity("grad_linear_weight", "gradient (LM-head weight)", 4, "grad_linear_weight", "linear_weight",
             call_grad, "gradient", _has_tensor("linear_weight")),
    # a weight gradient scaled by one token's cotangent
    Quantity("vjp_linear_weight", "VJP (LM-head weight)", 8, "grad_linear_weight", "linear_weight", call_vjp,
             "vjp", _has_tensor("linear_weight", weighed=True), vjp=True),
    Quantity("grad_linear_bias", "gradient (LM-head bias)", 5, "grad_linear_bias", "linear_bias", call_grad,
             "gradient", _has_tensor("linear_bias")),
    Quantity("vjp_linear_bias", "VJP (LM-head bias)", 9, "grad_linear_bias", "linear_bias", call_vjp, "vjp",
             _has_tensor("linear_bias", weighed=True), vjp=True),
    Quantity("vjp_logits", "VJP, random cotangent", 6, "grad_logits", "prediction", call_vjp, "vjp",
             _weighed("grad_logits"), vjp=True),
    Quantity("vjp_labels", "VJP (labels)", 7, "grad_labels", "labels", call_vjp, "vjp", _weighed("grad_labels"),
             vjp=True),
    # a model of the arithmetic says nothing of writes into the inputs
    Quantity("inputs_intact", "inputs intact after backward", 11, "grad_logits", "prediction", call_probe,
             "inputs", _probed, probe=True, modelled=False),
    Quantity("second_backward", "second backward (retained graph)", 12, "grad_logits", "prediction", call_probe,
             "vjp", _probed, vjp=True, probe=True, shares="vjp_logits"),
    Quantity("jvp", "forward mode (JVP)", 10, "grad_logits", "prediction", call_jvp, "jvp", _forward_mode),
    # every rank returns the same loss, bit for bit (a rank that smooths over its own share of
    # the vocabulary does not): judged apart from the loss's value
    Quantity("rank_agreement", "every rank the same loss", 13, None, None, call_rank_agreement, "agreement",
             lambda case: True, modelled=False, sharded=_whole_on_every_rank),
    # TP = N against TP = 1 of the same framework: both within the loss's bound of the exact
    # value, so within twice it of each other (a sharding bug, or a kernel's own, told apart)
    Quantity("same_as_one_rank", "the same loss as on one rank", 14, None, None, call_same_as_one_rank,
             "difference", _defined, modelled=False, shares="loss", sharded=lambda case, layout: layout.ranks > 1),
)
QUANTITIES: dict[str, Quantity] = {row.name: row for row in _ROWS}
NAMES: tuple[str, ...] = tuple(QUANTITIES)
REPORT_ORDER: tuple[str, ...] = tuple(sorted(NAMES, key=lambda name: QUANTITIES[name].order))
LABELS: dict[str, str] = {row.name: row.label for row in _ROWS}
PINNABLE: tuple[str, ...] = tuple(row.name for row in _ROWS if row.pinnable)
PROBES: tuple[str, ...] = tuple(row.name for row in _ROWS if row.probe)


def quantity(name: str) -> Quantity:
    """The row of a quantity; KeyError naming the known ones."""
    try:
        return QUANTITIES[name]
    except KeyError:
        raise KeyError(f"unknown quantity {name!r} (known: {', '.join(NAMES)})") from None


def of_case(case: Case, layout: Layout | None = None) -> tuple[Quantity, ...]:
    """The quantities a case is checked on, whole or under a layout, in table order."""
    return tuple(row for row in _ROWS if row.applies_under(case, layout))
