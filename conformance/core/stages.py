"""The stages of one check, in the order the runner takes them. Each returns what the next one
needs, or raises Decided: the check's outcome, known before its last stage (a framework not
installed, a manifest skip, a call not offered, a mode that returned nothing)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from conformance import adapters
from conformance.adapters import compiles
from conformance.core import behaviour_models, checks, mode_verdicts, quantities
from conformance.core import manifest as divergences
from conformance.core.compare import compare
from conformance.core.expected import as64, case_cotangent, conditions_inputs
from conformance.results.records import number, summarize
from reference import registry

if TYPE_CHECKING:
    from conformance.adapters.api import Adapter, Capability, Result
    from conformance.cases import Pinned
    from conformance.core.checks import Check
    from conformance.core.compare import Verdict
    from conformance.core.references import Expectation, References


class Decided(Exception):
    """The check's outcome, decided by a stage before the verdict; `coverage`: the manifest
    entries that decided it, noted in the record."""

    def __init__(self, outcome: str, reason: str | None = None, message: str = "",
                 coverage: divergences.Coverage | None = None) -> None:
        super().__init__(message)
        self.outcome, self.reason, self.message, self.coverage = outcome, reason, message, coverage


def golden_marking(verdict: str, pinned: Pinned) -> None:
    """A number its case file says is wrong beyond its digits holds no framework to it; the
    marking itself is checked, so a golden that turns out right is noticed."""
    if not pinned.inexact:
        return
    if verdict != "inexact":
        raise Decided("failed", "golden-marking", f"the pinned number is marked inexact ({pinned.inexact}), "
                                                  f"but it is {verdict} against the reference: remove the marking")
    raise Decided("skipped", "inexact-golden", f"the source's number is wrong beyond its printed digits: "
                                               f"{pinned.inexact}")


def load_adapter(framework: str, required: set[str]) -> Adapter:
    """The framework's adapter; a framework that cannot be imported is skipped, or an error
    where the run requires it."""
    try:
        return adapters.load(framework)
    except adapters.AdapterError as exc:
        raise Decided("error", "adapter-error", str(exc)) from None
    except adapters.Unavailable as exc:
        if framework in required:
            raise Decided("error", "not-installed", f"required framework unavailable: {exc}") from None
        raise Decided("skipped", "not-installed", str(exc)) from None


def manifest_candidates(manifest: Sequence[divergences.Entry], check: Check, adapter: Adapter,
                        cast: dict) -> tuple[divergences.Entry, ...]:
    """The entries that match this check and the installed versions; a skip entry ends it."""
    candidates = divergences.candidates(manifest, check, adapter.package_versions(),
                                        lambda: conditions_inputs(check.case, cast, check.layout))
    skips = tuple(e for e in candidates if e.action == "skip")
    if skips:
        raise Decided("skipped", "manifest", f"{skips[0].id}: {skips[0].reason}", divergences.Coverage(skips))
    return tuple(candidates)


def offered(adapter: Adapter, check: Check, options: dict) -> Capability:
    """The adapter's declaration that covers this call: on this device, dtype, quantity, options."""
    if check.device not in adapter.devices():
        raise Decided("skipped", "no-device", f"{check.framework} sees no {check.device} device here")
    try:
        capability = adapter.check_offered(check.case.op, check.dtype, check.device, check.quantity, options)
    except adapters.NotOffered as exc:
        raise Decided(*_not_called(exc)) from None
    if check.layout and check.layout.axis not in capability.layouts:
        raise Decided("skipped", "not-offered", f"{check.framework} {check.case.op} takes no inputs split on "
                                                f"the {check.layout.axis} axis (layout {check.layout.name})")
    return capability


def has_reference(check: Check, variant: str) -> None:
    """The variant's analytic gradient, where the quantity is built from one."""
    gradient = quantities.quantity(check.quantity).gradient
    if gradient and not registry.has_grad(check.case.op, variant, gradient):
        raise Decided("skipped", "not-offered", f"no analytic {check.quantity} for the {variant} variant yet")


def covering(candidates: Sequence[divergences.Entry], check: Check, variant: str, cast: dict,
             expectation: Expectation, references: References) -> divergences.Coverage | None:
    """The xfail candidates that hold here: an entry with a model only where the model's
    result is outside the check's tolerance (the behaviour shows on these inputs), on the
    kinds of check the model speaks to (behaviour_models.judged_on)."""
    found = tuple(e for e in candidates if e.action == "xfail" and (not e.model or (
        behaviour_models.judged_on(e.model, bool(check.pinned))
        and _model_shows(e.model, check, variant, cast, expectation, references))))
    return divergences.Coverage(found) if found else None


def _model_shows(model: str, check: Check, variant: str, cast: dict, expectation: Expectation,
                 references: References) -> bool:
    modelled = references.model_values(model, check.case, variant, cast, check.dtype, check.quantity)
    if modelled is None:
        return False
    expected, scale, tolerance = expectation
    return not compare(expected, modelled, scale, check.dtype, tolerance, check.dtype).passed


@dataclass(frozen=True)
class Called:
    """What the adapter returned (a Result, or the exception the framework raised) and the
    compilations each mode made on the way."""

    returned: Result | BaseException
    compiled: dict = field(default_factory=dict)


def call(adapter: Adapter, check: Check, variant: str, cast: dict, given: dict, options: dict) -> Called:
    """The quantity's adapter call on copies of the inputs (given)."""
    op = check.case.op
    args = (op, given[registry.OPS[op].prediction], given["labels"], options, check.dtype, check.device)
    inputs = quantities.CallInputs(check.framework, args,
                                   lambda: case_cotangent(check.case, variant, as64(cast), check.dtype),
                                   lambda: checks.direction(check.case, check.dtype), check.layout)
    quantity = quantities.quantity(check.quantity)
    before = compiles.snapshot()
    try:
        returned = quantity.call(adapter, quantity, inputs)
    except adapters.NotOffered as exc:
        raise Decided(*_not_called(exc)) from None
    except adapters.RankFailed as exc:
        raise Decided("error", "rank-failed", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the framework raised: judged as that mode's outcome
        returned = exc
    return Called(returned, compiles.since(before))


@dataclass(frozen=True)
class Judgement:
    """The verdict and what the record says of it."""

    outcome: str
    reason: str | None
    message: str
    fields: dict


def judge(check: Check, variant: str, returned: Result | BaseException, modes: Sequence[str],
          expectation: Expectation) -> list[mode_verdicts.ModeOutcome]:
    """Every way the framework ran (JAX: jit and eager) judged on its own."""
    outcomes = mode_verdicts.outcomes_of(returned, modes)
    if not isinstance(returned, BaseException) and not quantities.quantity(check.quantity).probe:
        missing = _missing_modes(modes, [mode for mode, _ in outcomes])
        if missing:
            raise Decided("error", "adapter-error", f"{check.framework} declares modes {', '.join(modes)} "
                                                    f"but returned none for {', '.join(missing)}")
    for _, value in outcomes:
        if not isinstance(value, BaseException) and value.device != check.device:
            raise Decided("error", "wrong-device", f"asked for {check.device}, computed on {value.device}")
    expected, scale, tolerance = expectation
    return [mode_verdicts.judge_mode(mode, value, expected, scale, tolerance, check,
                                     lambda v, r: describe(check, variant, v, expected, r))
            for mode, value in outcomes]


def verdict(check: Check, judged: list[mode_verdicts.ModeOutcome], expectation: Expectation,
            coverage: divergences.Coverage | None) -> Judgement:
    """The check's verdict from its modes' (the worst shown), with the manifest's coverage."""
    expected, _, tolerance = expectation
    fields: dict[str, Any] = {}
    valued = [o for o in judged if o.verdict is not None]
    if valued:
        worst = max(valued, key=lambda o: (not o.verdict.passed, o.verdict.max_ulp_err))  # type: ignore[union-attr]
        found, result = worst.verdict, worst.result
        assert found is not None and result is not None
        fields.update(
            expected=summarize(expected, "float64", found.worst_index),
            actual=summarize(result.values, result.dtype, found.worst_index),
            max_abs_err=number(found.max_abs_err), max_ulp_err=number(found.max_ulp_err),
            tolerance={**tolerance.as_record(check.dtype), "bound_at_worst": number(found.bound_at_worst)},
        )
    counted = [o.result.communication for o in judged if o.result is not None and o.result.communication]
    if counted:  # the first mode's: what the ranks sent in one forward and backward
        fields["communication"] = counted[0]
    if all(o.refused for o in judged):
        fields["refused"] = "raised" if any(o.refused == "raised" for o in judged) else "nan"
    kinds = set().union(*(o.kinds for o in judged))
    if kinds:
        fields["failure"] = sorted(kinds)
    decided = mode_verdicts.judge_check(judged, coverage)
    if len(judged) > 1:
        fields["modes"] = mode_verdicts.modes_record(judged, decided, expected, check.dtype)
    return Judgement(decided.outcome, decided.reason, decided.message, fields)


def _missing_modes(declared: Sequence[str], returned: Sequence[str]) -> list[str]:
    """Declared (and selected) modes the adapter did not run; a single declared mode may go unnamed."""
    if len(declared) == 1 and len(returned) == 1:
        return []
    return [mode for mode in declared if mode not in returned]


def _not_called(exc: adapters.NotOffered) -> tuple[str, str, str]:
    """(outcome, reason, message) of a call not made: a mode left out of the run is not the framework's lack."""
    reason = "mode-not-selected" if isinstance(exc, adapters.ModeNotSelected) else "not-offered"
    return "skipped", reason, str(exc)


def describe(check: Check, variant: str, verdict: Verdict, expected: np.ndarray, result: Result) -> str:
    """The failure message: how many elements, the largest error, where, and the bound."""
    against = f"reference variant {variant}"
    if check.pinned:
        pinned = check.pinned
        value = repr(pinned.value) if pinned.shape is None else f"array of shape {list(pinned.shape)}"
        against = f"pinned {value}{pinned.printed} ({pinned.source})"
    mode = f" ({result.mode})" if result.mode else ""
    lines = [f"{check.framework}{mode} {check.case.op} {check.quantity} {check.dtype} on {check.device} vs {against}"]
    lines += verdict.problems
    if verdict.worst_index is not None:
        i = verdict.worst_index
        lines.append(
            f"{verdict.mismatched}/{verdict.total} elements outside tolerance; worst at index {list(i)}: "
            f"expected {np.asarray(expected)[i]!r}, actual {np.asarray(result.values)[i]!r}, error "
            f"{verdict.max_abs_err:.3g} ({verdict.max_ulp_err:.3g} ULP), bound there {verdict.bound_at_worst:.3g}")
    return "\n".join(lines)
