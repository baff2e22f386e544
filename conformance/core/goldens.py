"""How good a source's printed number is, judged against the reference (not a framework).

A golden printed to some digits or decimals is `rounded` when the reference value rounds to
it (half to even), `truncated` when only cutting the digits off gives it, and `inexact` when
neither does: the source's own test then passes only through a tolerance looser than its
digits. A golden given without its precision is `exact` when it is within the pinned ULPs of
the reference in its dtype; one given with the source's own tolerance (rel, abs) is `exact`
so, else `within` when inside that tolerance; else `inexact`. The reference is taken both in float64 and rounded
to the source's dtype (what a float32 program holds before printing); either may explain it.
An array is as good as its worst element.
"""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np
import numpy.typing as npt

from conformance.core.tolerance import ulp
from reference.dtypes import round_to

VERDICTS = ("exact", "rounded", "truncated", "within", "inexact")  # from best to worst
ROUNDED, TRUNCATED, INEXACT = (VERDICTS.index(v) for v in ("rounded", "truncated", "inexact"))


def as_printed(value: float, rounding: str, digits: int | None = None, decimals: int | None = None) -> float:
    """value written to `digits` significant digits or `decimals` places, exactly (decimal
    arithmetic on the float's own binary value)."""
    with localcontext() as context:
        context.prec = 800  # room for any float's digits and any number of decimals
        exact = Decimal(float(value))
        if decimals is not None:
            quantum = Decimal(1).scaleb(-decimals)
        else:
            assert digits is not None, "written to digits or to decimals"
            quantum = Decimal(1).scaleb(exact.adjusted() - digits + 1)
        return float(exact.quantize(quantum, rounding=rounding))


def judge(printed: npt.ArrayLike, reference: npt.ArrayLike, dtype: str, digits: int | None = None,
          decimals: int | None = None, pinned_ulps: float = 4.0, within: npt.ArrayLike | None = None) -> str:
    """The verdict on a golden (a number or an array) against the reference's float64 values;
    `within`, the half-width the source's own tolerance (rel, abs) allows per element."""
    # a number pins every element of the quantity
    printed, reference = np.broadcast_arrays(np.atleast_1d(np.asarray(printed, np.float64)),
                                             np.atleast_1d(np.asarray(reference, np.float64)))
    candidates = (reference, round_to(reference, dtype))
    if digits is None and decimals is None:
        with np.errstate(invalid="ignore"):
            close = np.abs(printed - reference) <= pinned_ulps * ulp(reference, dtype)
        same = (np.isnan(printed) & np.isnan(reference)) | (printed == reference)  # NaN, or the same infinity
        if bool(np.all(close | same)):
            return "exact"
        if within is None:
            return "inexact"
        with np.errstate(invalid="ignore"):
            inside = np.abs(printed - reference) <= np.broadcast_to(within, printed.shape)
        return "within" if bool(np.all(inside | same)) else "inexact"
    worst = 0
    for shown, values in zip(printed.ravel(), zip(*(c.ravel() for c in candidates))):
        if not all(np.isfinite(values)):
            worst = max(worst, INEXACT)
            continue
        if digits is not None and shown == 0:  # a printed 0 is 0 to significant digits
            worst = max(worst, ROUNDED if any(v == 0 for v in values) else INEXACT)
            continue
        if any(as_printed(v, ROUND_HALF_EVEN, digits, decimals) == shown for v in values):
            worst = max(worst, ROUNDED)
        elif any(as_printed(v, ROUND_DOWN, digits, decimals) == shown for v in values):
            worst = max(worst, TRUNCATED)
        else:
            worst = INEXACT
    return VERDICTS[worst]
