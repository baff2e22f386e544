"""What a check expects: the inputs as the dtype holds them, the reference's value and
conditioning scale for each quantity (loss, gradient, vector-Jacobian and forward-mode
products with their seeded cotangents and directions), a pinned number with its printed
precision, or a value a quantity fixes itself. Computed, not kept: references.py keeps them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from conformance.cases.pinned import pinned_shape
from conformance.core import checks, conditions, quantities
from conformance.core import tolerance as tol
from conformance.core.quantities import probed_inputs
from reference import registry
from reference.dtypes import numpy_dtype
from reference.numerics.conditioning import summation

if TYPE_CHECKING:
    from conformance.cases import Case
    from conformance.core.checks import Check
    from conformance.sharded.layouts import Layout
    from reference.declaration import Variant

Values = tuple[np.ndarray, np.ndarray]  # (expected, scale) in float64
Expectation = tuple[np.ndarray, np.ndarray, tol.Tolerance]


def cast_inputs(case: Case, dtype: str) -> dict[str, np.ndarray]:
    """The inputs as the dtype under test holds them (integer labels untouched)."""
    cast = {}
    for name, array in case.inputs.items():
        cast[name] = array if array.dtype.kind in "iu" else array.astype(numpy_dtype(dtype))
    return cast


def as64(cast: dict) -> dict:
    """The cast inputs as float64 arrays (integer labels untouched)."""
    return {k: v.astype(np.float64) if v.dtype.kind not in "iu" else v for k, v in cast.items()}


def reference_values(case: Case, variant: str | Variant, cast: dict, dtype: str, quantity: str) -> Values:
    """(expected, scale) in float64: the variant's value and its conditioning scale."""
    wide = as64(cast)
    row = quantities.quantity(quantity)
    if row.expected == "loss":  # one pass over the logits where the variant has one (the softmax ops)
        return registry.evaluate_loss_and_scale(case.op, variant, wide, case.options, dtype)
    if row.expected == "jvp":
        return forward_reference(case, variant, wide, dtype)
    if row.expected not in ("gradient", "vjp"):
        raise ValueError(f"{quantity} has no reference value: its expected value is {row.expected!r}")
    wrt = row.wrt
    assert wrt is not None, f"{quantity} is a gradient: it names what it is taken with respect to"
    options = case.options
    if row.vjp:  # d sum(c * L): the cotangent weighs each loss, as a sample weight does
        c = case_cotangent(case, variant, wide, dtype)
        if c.ndim == 0:  # a reduced loss (second_backward): its scalar cotangent scales the gradient
            grad, scale = registry.evaluate_grad(case.op, variant, wide, options, dtype, wrt)
            return grad * c, scale * np.abs(c)
        options = {**options, "sample_weight": c * np.asarray(options.get("sample_weight", 1.0), np.float64)}
    return registry.evaluate_grad(case.op, variant, wide, options, dtype, wrt)


def forward_reference(case: Case, variant: str | Variant, wide: dict, dtype: str) -> Values:
    """The directional derivative of the (reduced) loss along the seeded direction v:
    sum_j dL_i/dz_ij v_ij per loss (reduction none), or sum dL/dz v; and its scale."""
    grad, scale = registry.evaluate_grad(case.op, variant, wide, case.options, dtype, "prediction")
    v = checks.direction(case, dtype)
    terms = grad * v
    with np.errstate(invalid="ignore"):
        sizes = np.abs(scale * v)
    sizes = np.where(~np.isfinite(sizes) & (terms == 0), 0.0, sizes)  # a masked (-inf) logit adds exactly 0
    if case.options.get("reduction", "none") != "none":
        return np.asarray(np.sum(terms)), np.asarray(np.sum(sizes) + summation(terms))
    if registry.OPS[case.op].class_axis and grad.ndim:
        axis = case.options.get("axis", -1)
        return np.sum(terms, axis=axis), np.sum(sizes, axis=axis) + summation(terms, axis)
    return terms, sizes


def case_cotangent(case: Case, variant: str | Variant, wide: dict, dtype: str) -> np.ndarray:
    """The seeded cotangent of this case's unreduced losses, in the dtype under test; a scalar
    where the case reduces them."""
    if case.options.get("reduction", "none") != "none":
        return checks.cotangent(case, dtype, ())
    shape = registry.evaluate_loss(case.op, variant, wide, {**case.options, "reduction": "none"}, dtype).shape
    return checks.cotangent(case, dtype, shape)


def call_options(case: Case, cast: dict) -> dict:
    """The options an adapter is called with: the case's, and an op's further tensors (as the
    dtype under test holds them)."""
    tensors = {name: cast[name] for name in registry.OPS[case.op].tensors if name in cast}
    return {**case.options, **tensors} if tensors else case.options


def conditions_inputs(case: Case, cast: dict, layout: Layout | None = None) -> conditions.Inputs:
    """The check's inputs as the manifest's input predicates read them (an op with a head: its
    logits, in float64, read as the head's), and the layout they are split by across ranks."""
    wide = as64(cast)
    op = registry.OPS[case.op]
    if op.head:
        logits = wide[op.prediction] @ wide["linear_weight"].T + wide.get("linear_bias", 0.0)
        return conditions.Inputs(op.head, case.options, logits, wide["labels"], layout)
    return conditions.Inputs(case.op, case.options, wide[op.prediction], wide["labels"], layout)


def pinned_expectation(check: Check, cast: dict) -> Expectation:
    """(expected, scale, tolerance) of a pinned number: the source's number for every element,
    with the precision it was printed to."""
    case, pinned = check.case, check.pinned
    assert pinned is not None
    shape = pinned_shape(registry.OPS[case.op], cast, case.options, pinned.quantity)
    values = np.broadcast_to(pinned.values, shape)  # a number stands for every element
    # Around the number, what its source's precision allows: its own rtol and atol, or what
    # rounds or truncates to its digits; beyond that, the pinned ULPs an exact number allows,
    # so a framework that rounds honestly next to a value the source rounded is not held to
    # the last printed digit (Paddle's float32 sigmoid, 2 ulps from TensorFlow's doctest).
    centre: Any = values
    half_width: Any = 0.0
    how = ""
    within = pinned.within()
    if within is not None:
        half_width, how = np.broadcast_to(within, shape), "source"
    elif pinned.printed:
        (centre, half_width), how = tol.printed_interval(values, pinned.digits, pinned.decimals), "printed"
    return centre, np.zeros(shape), tol.Tolerance(tol.pinned_ulps(), 0.0, half_width,
                                                  f"{how}{pinned.printed}" if how else "")


def difference_expectation(reference: np.ndarray, scale: np.ndarray, tolerance: tol.Tolerance,
                           dtype: str) -> Expectation:
    """(expected, scale, tolerance) of a difference of two results of one quantity (the loss at
    several ranks and at one, quantities.difference): 0, within twice the quantity's bound at
    the reference, since each lies within that bound of it."""
    reference = np.asarray(reference, np.float64)
    with np.errstate(invalid="ignore"):
        at_reference = tolerance.ulp * tol.ulp(reference, dtype) + tolerance.abs
    at_reference = np.where(np.isfinite(reference) & np.isfinite(at_reference), at_reference, 0.0)
    return np.zeros_like(reference), scale, tol.Tolerance(0.0, 2 * tolerance.cond, 2 * at_reference,
                                                          "twice the bound of each result at the reference")


def fixed_expectation(check: Check, cast: dict) -> Expectation | None:
    """(expected, scale, tolerance) of a quantity that fixes its own expected value, not the
    reference's; None for the others."""
    row = quantities.quantity(check.quantity)
    if row.expected == "inputs":  # nothing may have been written into them: bit for bit
        expected = probed_inputs(*(cast[name] for name in registry.OPS[check.case.op].inputs if name in cast))
        return expected, np.zeros_like(expected), tol.Tolerance(0.0, 0.0, 0.0, "bitwise: the inputs unchanged")
    if row.expected == "agreement":  # each mode's value is its ranks' spread (quantities.call_rank_agreement)
        return np.zeros(()), np.zeros(()), tol.Tolerance(0.0, 0.0, 0.0, "bitwise: every rank the same loss")
    if row.expected == "dtype":  # the value set aside (quantities.call_loss_dtype): compare names the dtype
        return np.zeros(()), np.zeros(()), tol.Tolerance(0.0, 0.0, 0.0, f"returned in {check.dtype}")
    return None
