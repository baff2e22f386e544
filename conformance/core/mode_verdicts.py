"""Each way a framework ran one check (eager, jit, compile, ...) judged on its own, then the
check's verdict from theirs.

A mode either returned values or raised. On undefined input (labels outside the classes,
targets outside [0, 1]) a raise, or NaN where the reference is NaN, is a conforming refusal;
a finite answer is a finding, whatever another mode did. On defined input a raise is a
finding. Manifest entries excuse only the modes they speak of (an entry naming no mode speaks
of all), only the kinds of difference they expect, and never turn a conforming refusal into a
fixed divergence: a framework that refuses undefined input is right.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np

from conformance.adapters import RaisedInMode, Result
from conformance.core import manifest as divergences
from conformance.core import relative_view
from conformance.core.compare import Verdict, compare
from conformance.core.failure_kinds import classify
from conformance.results.records import number

if TYPE_CHECKING:
    from conformance.core.checks import Check
    from conformance.core.tolerance import Tolerance



@dataclass
class ModeOutcome:
    """What one mode did: its values and their verdict, or the raise; and how it stands."""

    mode: str
    result: Result | None = None  # where it returned values
    error: BaseException | None = None  # where it raised
    verdict: Verdict | None = None
    kinds: set[str] = field(default_factory=set)  # failure_kinds of the difference ({"raises"} for a raise)
    refused: str = ""  # "raised" or "nan": a conforming refusal of undefined input
    message: str = ""  # the failure message, or what was raised

    @property
    def conforms(self) -> bool:
        return not self.kinds

    @property
    def values(self) -> np.ndarray:
        """The values of a mode that returned (judge_mode sets result and verdict together)."""
        return cast(np.ndarray, cast(Result, self.result).values)


@dataclass
class CheckVerdict:
    """The check's outcome from its modes', with what the record shows."""

    outcome: str
    reason: str | None = None
    message: str = ""
    modes: dict[str, str] = field(default_factory=dict)  # mode -> its own outcome (the record's `modes`)


def outcomes_of(result_or_error: Result | BaseException,
                capability_modes: Sequence[str]) -> list[tuple[str, Result | BaseException]]:
    """(mode, Result or exception) for each way the call ran. An exception the adapter raised
    for the whole call is one unnamed outcome (a raise of no one mode), unless it names its mode;
    an adapter with one mode may leave its results unnamed."""
    unnamed = capability_modes[0] if len(capability_modes) == 1 else ""
    if isinstance(result_or_error, RaisedInMode):
        return [(result_or_error.mode, result_or_error.error)]
    if isinstance(result_or_error, BaseException):
        return [(unnamed, result_or_error)]
    return [(each.mode or unnamed, each.raised if each.raised is not None else each)
            for each in result_or_error.all_modes()]


def judge_mode(mode: str, value: Result | BaseException, expected: np.ndarray, scale: np.ndarray,
               tolerance: Tolerance, check: Check, describe: Callable[[Verdict, Result], str]) -> ModeOutcome:
    """One mode's values against the reference, or its raise, on their own."""
    framework, undefined = check.framework, check.case.undefined
    named = f"{framework} ({mode})" if mode else framework
    if isinstance(value, BaseException):
        detail = what_raised(value)
        if undefined:
            return ModeOutcome(mode, error=value, refused="raised",
                               message=f"{named} refused the undefined input: {detail}")
        return ModeOutcome(mode, error=value, kinds={"raises"}, message=f"{named} raised {detail}")
    values = cast(np.ndarray, value.values)  # a mode that returned carries its values
    verdict = compare(expected, values, scale, check.dtype, tolerance, value.dtype)
    kinds = classify(expected, values, verdict, check.dtype, value.dtype)
    outcome = ModeOutcome(mode, result=value, verdict=verdict, kinds=kinds)
    if verdict.passed and undefined and np.isnan(expected).any():
        outcome.refused = "nan"  # NaN exactly where the reference says the loss is undefined
    if not verdict.passed:
        outcome.message = describe(verdict, value)
    return outcome


def judge_check(outcomes: list[ModeOutcome], coverage: divergences.Coverage | None) -> CheckVerdict:
    """The check passes only when every mode conforms. A mode that does not conform fails the
    check unless an entry about that mode expects each kind of difference it shows; entries
    that cover modes which all conform on defined input no longer diverge (strict xfail)."""
    covered = {o.mode: coverage.for_mode(o.mode) if coverage else None for o in outcomes}
    verdict = CheckVerdict("passed")
    uncovered = [o for o in outcomes if not o.conforms and covered[o.mode] is None]
    wrong = [o for o in uncovered if o.result is not None]
    if wrong:
        verdict = CheckVerdict("failed", None, wrong[0].message)
    elif uncovered:
        verdict = CheckVerdict("error", "raised", uncovered[0].message)
    else:
        known = [o for o in outcomes if covered[o.mode] is not None]
        differing = [o for o in known if not o.conforms]
        if differing:
            entries = _entries_of(differing, covered)
            kinds = set().union(*(o.kinds for o in differing))
            verdict = _known(entries, kinds, differing[0].message)
        elif known and not all(o.refused for o in known):
            entries = _entries_of(known, covered)
            verdict = CheckVerdict("xpassed", "manifest",
                                   f"{entries.id} no longer diverges (strict xfail): {_first_message(outcomes)}")
        elif outcomes and all(o.refused for o in outcomes):
            verdict = CheckVerdict("passed", None, _first_message(outcomes))
    verdict.modes = {o.mode: _mode_outcome(o, covered[o.mode]) for o in outcomes}
    return verdict


def _entries_of(outcomes: list[ModeOutcome],
                covered: dict[str, divergences.Coverage | None]) -> divergences.Coverage:
    """The entries about these modes, once each, in the manifest's order."""
    found = []
    for o in outcomes:
        coverage = cast(divergences.Coverage, covered[o.mode])  # these modes are each covered
        found += [e for e in coverage.entries if e not in found]
    return divergences.Coverage(tuple(found))


def _known(entries: divergences.Coverage, kinds: set[str], message: str) -> CheckVerdict:
    """A known divergence only where the check differs the way its entries say it does."""
    if entries.excuses(kinds):
        return CheckVerdict("xfailed", "manifest", entries.reason)
    return CheckVerdict("failed", "manifest-mismatch",
                        f"{', '.join(entries.ids)} expect {', '.join(entries.expect)}, but this check shows "
                        f"{', '.join(sorted(kinds)) or 'no difference'}: {message}")


def _first_message(outcomes: list[ModeOutcome]) -> str:
    return next((o.message for o in outcomes if o.message), "")


def _mode_outcome(outcome: ModeOutcome, coverage: divergences.Coverage | None) -> str:
    """How one mode stands by itself: passed (a refusal included), failed, error, or, under an
    entry about it, xfailed (the entry expects what it shows) or xpassed (it conforms now)."""
    if outcome.conforms:
        return "xpassed" if coverage is not None and not outcome.refused else "passed"
    if coverage is not None:
        return "xfailed" if coverage.excuses(outcome.kinds) else "failed"
    return "error" if outcome.error is not None else "failed"


def modes_record(outcomes: list[ModeOutcome], verdict: CheckVerdict, expected: np.ndarray,
                 dtype: str) -> dict[str, dict[str, object]]:
    """Each mode's outcome, largest ULP error and RMS error, what it raised or how it refused;
    beside a compiled mode, whether the rule of torch._dynamo.utils.same accepts it next to the
    eager result (relative_view)."""
    record = {}
    for o in outcomes:
        entry = {"outcome": verdict.modes[o.mode], "passed": o.conforms}
        if o.verdict is not None:
            entry.update(max_ulp_err=number(o.verdict.max_ulp_err),
                         rms_err=number(relative_view.rms_error(expected, o.values)))
        else:  # it raised
            entry.update(max_ulp_err=None, rms_err=None, raised=what_raised(cast(BaseException, o.error)))
        if o.refused:
            entry["refused"] = o.refused
        record[o.mode] = entry
    eager = next((o for o in outcomes if o.mode == "eager" and o.result is not None), None)
    for o in outcomes:
        if eager is not None and o is not eager and o.result is not None:
            record[o.mode]["same_as_eager"] = relative_view.same(expected, eager.values, o.values, dtype)
    return record


def what_raised(error: BaseException) -> str:
    """One line of the exception: its first (a compiler's message ends with advice on logging),
    unless that only introduces the rest (TensorFlow's "in user code:"), then its last."""
    lines = [line for line in "".join(traceback.format_exception_only(type(error), error)).splitlines()
             if line.strip()]
    if not lines:
        return type(error).__name__
    return (lines[-1] if lines[0].rstrip().endswith(":") else lines[0]).strip()
