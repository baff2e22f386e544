"""The search: hypothesis's targeted phase pushes up error / tolerance; the worst input is
then shrunk by hand (fewer rows, shorter decimals) while it stays that bad.

The budget is spent on inputs, not on compiling. A framework with several modes is searched
in each: eagerly over every shape, and in each other mode (jit, compile, ...) at one fixed
shape, which that mode compiles once; the worst candidates of every mode are then confirmed in
all of them, so the worst reported is the worst of any mode."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings, target

from conformance import adapters
from conformance.adapters.api import Adapter
from conformance.cases import Case
from conformance.core import quantities
from conformance.core import tolerance as tol
from conformance.core.compare import special_mismatch
from conformance.core.checks import Check
from conformance.core.mode_verdicts import what_raised
from conformance.core.expected import cast_inputs
from conformance.core.references import References
from conformance.hunt.inputs import problem
from reference.dtypes import numpy_dtype
from reference.registry import OPS

# What the hunt searches: the quantities a plain call on the prediction produces (no seeded cotangent).
QUANTITIES = tuple(q.name for q in quantities.QUANTITIES.values()
                   if q.call in (quantities.call_loss, quantities.call_grad) and q.wrt in (None, "prediction"))
CEILING = 1e12  # a NaN, an infinity or a raise where a number was due: worse than any error
CONFIRMED = 8  # the worst candidates of each mode's search, confirmed in every mode


@dataclass
class Finding:
    score: float  # the largest error / tolerance over elements and modes; > 1 fails the check
    inputs: dict
    expected: np.ndarray | None = None
    actual: np.ndarray | None = None
    mode: str = ""
    raised: str = ""


class _OutOfTime(Exception):
    pass


def evaluate(adapter: Adapter, framework: str, op: str, dtype: str, quantity: str, inputs: dict) -> Finding:
    """How far the framework is from the reference on these inputs, in tolerances."""
    case = Case(name="hunt", op=op, path="<hunt>", inputs=inputs)
    capability = adapter.check_offered(op, dtype, "cpu", quantity)
    cast = cast_inputs(case, dtype)
    check = Check(case, framework, dtype, "cpu", quantity)
    expected, scale, tolerance = References().expectation(check, capability.variant, cast)
    prediction, labels = cast[OPS[op].prediction], cast["labels"]
    row = quantities.quantity(quantity)
    try:
        result = row.call(adapter, row, quantities.CallInputs(framework, (op, prediction, labels, {}, dtype, "cpu"),
                                                              _not_seeded, _not_seeded))
    except Exception as exc:  # raising on valid input is as bad as it gets
        return Finding(CEILING, inputs, expected, raised=what_raised(exc))
    worst = Finding(0.0, inputs, expected)
    for each in result.all_modes():
        if each.raised is not None:
            return Finding(CEILING, inputs, expected, mode=each.mode, raised=what_raised(each.raised))
        ratio = _ratio(expected, np.asarray(each.values, np.float64), scale, dtype, tolerance)
        if ratio >= worst.score:
            worst = Finding(ratio, inputs, expected, each.values, each.mode)
    return worst


def _not_seeded():
    raise ValueError("the hunt searches quantities of a plain call: no cotangent or direction")


def _ratio(expected, actual, scale, dtype, tolerance) -> float:
    if actual.shape != expected.shape:
        return CEILING
    if special_mismatch(expected, actual).any():
        return CEILING
    finite = np.isfinite(expected) & np.isfinite(actual)
    limit = tol.bound(expected, np.where(np.isfinite(scale), scale, 0.0), dtype, tolerance)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(finite, np.abs(actual - expected) / limit, 0.0)
    return float(min(np.max(ratios, initial=0.0), CEILING))


def search(adapter: Adapter, framework: str, op: str, dtype: str, quantity: str, budget: float,
           seed_value: int = 0) -> tuple[Finding, dict[str, int]]:
    """The worst input found within budget seconds, and how many inputs each mode computed.
    Half the budget goes to the eager search (every mode, where the framework has no eager one),
    the other half in equal shares to the other modes, each at a fixed shape."""
    modes = tuple(adapter.capability(op).modes)
    phases = [(("eager",), False)] + [((mode,), True) for mode in modes if mode != "eager"] \
        if "eager" in modes and len(modes) > 1 else [(modes, False)]
    shares = [1.0] if len(phases) == 1 else [0.5] + [0.5 / (len(phases) - 1)] * (len(phases) - 1)
    tried: dict[str, int] = {}
    candidates: list[Finding] = []
    for (searched, fixed), share in zip(phases, shares):
        adapters.select_modes(searched)
        try:
            worst, n = _search(adapter, framework, op, dtype, quantity, budget * share, seed_value, fixed)
        finally:
            adapters.select_modes(None)
        candidates += worst
        for mode in searched:
            tried[mode] = n
    if len(phases) == 1 or not candidates:
        return (candidates[0] if candidates else Finding(-1.0, {})), tried
    confirmed = [evaluate(adapter, framework, op, dtype, quantity, found.inputs) for found in candidates]
    return max(confirmed, key=lambda found: found.score), {mode: n + len(confirmed) for mode, n in tried.items()}


def _search(adapter, framework, op, dtype, quantity, budget, seed_value, fixed_shape) -> tuple[list[Finding], int]:
    """The CONFIRMED worst inputs found within budget seconds (worst first), and how many were tried."""
    deadline = time.monotonic() + budget
    worst: list[Finding] = []
    tried = 0

    @seed(seed_value)
    @settings(max_examples=10**9, deadline=None, database=None, phases=(Phase.generate, Phase.target),
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(problem(OPS[op], dtype, fixed_shape))
    def probe(inputs):
        nonlocal tried
        if time.monotonic() > deadline:
            raise _OutOfTime
        tried += 1
        found = evaluate(adapter, framework, op, dtype, quantity, inputs)
        target(found.score, label="error / tolerance")
        if len(worst) < CONFIRMED or found.score > worst[-1].score:
            worst[:] = sorted([*worst, found], key=lambda each: -each.score)[:CONFIRMED]

    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - only the deadline is swallowed
        if not _out_of_time(exc):
            raise
    return worst, tried


def _out_of_time(exc: BaseException) -> bool:
    """The deadline, raised directly or inside the group Hypothesis raises when it replays an
    input that passed before the deadline and meets it on the replay (FlakyFailure)."""
    if isinstance(exc, _OutOfTime):
        return True
    inner = getattr(exc, "exceptions", None) or ()  # an exception group (builtin from 3.11, a backport before)
    return bool(inner) and all(_out_of_time(e) for e in inner)


def shrink(adapter: Adapter, framework: str, op: str, dtype: str, quantity: str, found: Finding,
           budget: float) -> Finding:
    """Fewer rows and shorter decimals, keeping the score at least min(found, 1) (a failure
    stays a failure) or half of it (an input merely close to the bound)."""
    keep = 1.0 if found.score > 1.0 else found.score / 2
    deadline = time.monotonic() + budget
    best = found

    def still_bad(inputs):
        if time.monotonic() > deadline:
            return None
        candidate = evaluate(adapter, framework, op, dtype, quantity, inputs)
        return candidate if candidate.score >= keep else None

    rows = len(best.inputs["labels"])
    for row in reversed(range(rows)):
        if len(best.inputs["labels"]) > 1:
            fewer = {k: np.delete(v, row, axis=0) for k, v in best.inputs.items()}
            best = still_bad(fewer) or best
    for name, values in list(best.inputs.items()):
        if values.dtype.kind != "f":
            continue
        for index in np.ndindex(values.shape):
            for digits in range(1, 9):
                shorter = best.inputs[name].copy()
                shorter[index] = _round_to(shorter[index], digits, dtype)
                if shorter[index] == best.inputs[name][index]:
                    break
                candidate = still_bad({**best.inputs, name: shorter})
                if candidate:
                    best = candidate
                    break
    return best


def _round_to(value: float, digits: int, dtype: str) -> float:
    return float(np.asarray(float(f"{value:.{digits}g}")).astype(numpy_dtype(dtype)).astype(np.float64))
