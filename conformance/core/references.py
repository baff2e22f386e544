"""The one owner of a process's reference values: every value a check is judged by (the
reference's, a pinned number's verdict, what a behaviour model of the manifest computes) is
computed here once and kept.

A check of one case, dtype and quantity is run for every framework, and the frameworks that
follow one variant share its reference (a 128,256-class reference takes a second); the other
processes of a run share it through reference_cache. A model's values are kept per case,
model, variant, dtype and quantity: only the comparison with them depends on the framework's
tolerance.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from conformance.core import behaviour_models, goldens, quantities, reference_cache
from conformance.core import tolerance as tol
from conformance.core.expected import (as64, difference_expectation, fixed_expectation, pinned_expectation,
                                       reference_values)
from conformance.results.records import summarize
from reference import registry
from reference.dtypes import round_to

if TYPE_CHECKING:
    from conformance.cases import Case
    from conformance.core.checks import Check

Values = tuple[np.ndarray, np.ndarray]  # (expected, scale) in float64


class Expectation(NamedTuple):
    """What a check's result is compared with: the values, their conditioning scale and the
    tolerance, all in float64."""

    expected: np.ndarray
    scale: np.ndarray
    tolerance: tol.Tolerance


class References:
    def __init__(self) -> None:
        # Each entry holds the case (or the pinned number) it was computed for, so the id() in
        # its key stays that object's for as long as the entry lives.
        self._values: dict[tuple, tuple[Any, Values]] = {}
        self._models: dict[tuple, tuple[Any, np.ndarray | None]] = {}
        self._goldens: dict[tuple, tuple[Any, dict]] = {}

    def values(self, case: Case, variant: str, cast: dict, dtype: str, quantity: str) -> Values:
        """The variant's (expected, scale) for this quantity, once per case, variant, dtype and
        quantity in this process, and once per run where reference_cache is on."""
        quantity = quantities.quantity(quantity).expected_as  # second_backward: one product, expected twice
        key = (id(case), variant, dtype, quantity)
        if key not in self._values:
            values = reference_cache.load(case, variant, dtype, quantity)
            if values is None:
                values = reference_values(case, variant, cast, dtype, quantity)
                reference_cache.store(case, variant, dtype, quantity, values)
            self._values[key] = (case, values)
        return self._values[key][1]

    def expectation(self, check: Check, variant: str, cast: dict) -> Expectation:
        """(expected, scale, tolerance) for this check: a pinned number with its source's
        precision, a value the quantity fixes itself (inputs_intact, loss_dtype), or the reference."""
        if check.pinned:
            return Expectation(*pinned_expectation(check, cast))
        fixed = fixed_expectation(check, cast)
        if fixed is not None:
            return Expectation(*fixed)
        expected, scale = self.values(check.case, variant, cast, check.dtype, check.quantity)
        row = quantities.quantity(check.quantity)
        if row.expected == "difference":  # two results of the quantity it shares, against each other
            shared = tol.for_check(check.dtype, check.framework, check.case.op, row.expected_as)
            return Expectation(*difference_expectation(expected, scale, shared, check.dtype))
        return Expectation(expected, scale, tol.for_check(check.dtype, check.framework, check.case.op,
                                                          check.quantity))

    def golden(self, check: Check, cast: dict) -> dict:
        """The pinned number's verdict (goldens.judge) and the reference value it is judged by:
        once per pinned number and dtype, whichever framework's check carries it."""
        pinned, case = check.pinned, check.case
        assert pinned is not None, "golden() is asked of pinned checks only"
        key = (id(pinned), check.dtype)
        if key not in self._goldens:
            reference, _ = self.values(case, pinned.variant, cast, check.dtype, check.quantity)
            verdict = goldens.judge(pinned.values, reference, check.dtype, pinned.digits, pinned.decimals,
                                    tol.pinned_ulps(), within=pinned.within())
            self._goldens[key] = (pinned, {
                "verdict": verdict, "variant": pinned.variant, "printed": summarize(pinned.values),
                "precision": pinned.printed.strip() or "exact", "reference": summarize(reference, "float64")})
        return dict(self._goldens[key][1])

    def model_values(self, model: str, case: Case, variant: str, cast: dict, dtype: str,
                     quantity: str) -> np.ndarray | None:
        """What a behaviour model computes for this quantity, or None where it says nothing."""
        row = quantities.quantity(quantity)
        if not row.modelled:  # inputs_intact, loss_dtype: a model of the arithmetic says nothing of them
            return None
        key = (id(case), model, variant, dtype, row.expected_as)
        if key not in self._models:
            self._models[key] = (case, self._model_values(model, case, variant, cast, dtype, row))
        return self._models[key][1]

    def _model_values(self, model: str, case: Case, variant: str, cast: dict, dtype: str,
                      row: quantities.Quantity) -> np.ndarray | None:
        if model == behaviour_models.FRAMEWORK_VARIANT:
            return self.values(case, variant, cast, dtype, row.name)[0]
        if model == behaviour_models.FLOAT32:  # the variant's arithmetic on float32 inputs, rounded to float32
            in32 = {k: v if v.dtype.kind in "iu" else v.astype(np.float32) for k, v in cast.items()}
            return round_to(reference_values(case, variant, in32, dtype, row.name)[0], "float32")
        spec = behaviour_models.formula(case.op, model)
        if spec is None or (row.gradient and getattr(
                spec, "grad" if row.gradient == "grad_logits" else "grad_labels") is None):
            return None
        try:
            with np.errstate(all="ignore"):
                if row.expected == "loss":  # the value alone: a model has no scale of its own
                    return registry.evaluate_loss(case.op, spec, as64(cast), case.options, dtype)
                return reference_values(case, spec, cast, dtype, row.name)[0]
        except behaviour_models.NotModelled:
            return None
