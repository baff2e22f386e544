"""Expected vs actual -> a verdict with the numbers a person needs to judge it."""
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from conformance.core import tolerance as tol


@dataclass
class Verdict:
    passed: bool
    max_abs_err: float
    max_ulp_err: float
    mismatched: int
    total: int
    worst_index: tuple[int, ...] | None
    problems: list[str] = field(default_factory=list)  # one line each: shape, dtype, NaN placement
    bound_at_worst: float = 0.0
    inaccurate: int = 0  # elements finite in both that lie outside the bound


def special_mismatch(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """NaN passes only where the reference is NaN; an infinity only where it has the same one."""
    exp_nan, act_nan = np.isnan(expected), np.isnan(actual)
    exp_inf, act_inf = np.isinf(expected), np.isinf(actual)
    bad = exp_nan != act_nan
    bad |= (exp_inf | act_inf) & ~(exp_nan | act_nan) & ((exp_inf != act_inf) | (np.sign(expected) != np.sign(actual)))
    return bad


def compare(expected: npt.ArrayLike, actual: npt.ArrayLike, scale: npt.ArrayLike, dtype: str,
            tolerance: tol.Tolerance, actual_dtype: str | None = None) -> Verdict:
    """Element-wise check of actual against expected under the conditioning-aware bound."""
    expected = np.asarray(expected, np.float64)
    problems = []
    if actual_dtype is not None and actual_dtype != dtype:
        problems.append(f"returned {actual_dtype} for {dtype} inputs")
    actual = np.asarray(actual, np.float64)
    if actual.shape != expected.shape:
        problems.append(f"shape {actual.shape}, expected {expected.shape}")
        return Verdict(False, float("nan"), float("nan"), expected.size, expected.size, None, problems)

    special = special_mismatch(expected, actual)
    finite = np.isfinite(expected) & np.isfinite(actual)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(actual - expected), 0.0)
    # An infinite scale would accept anything: a finite expected value is judged without it.
    scale = np.where(finite & np.isfinite(scale), scale, 0.0)
    limit = tol.bound(expected, scale, dtype, tolerance)
    over = (err > limit) | special
    ulps = np.where(finite, tol.ulp_distance(actual, expected, dtype), 0.0)
    ulps = np.where(special, np.inf, ulps)

    worst = None
    if expected.size:
        flat = int(np.argmax(np.where(over, np.inf, 0.0) + np.where(np.isfinite(ulps), ulps, 0.0)))
        worst = tuple(int(i) for i in np.unravel_index(flat, expected.shape))
    if special.any():
        problems.append(f"{int(special.sum())} element(s) NaN or infinite where the reference is not, or the reverse")
    return Verdict(
        passed=not over.any() and not problems,
        max_abs_err=float(err.max()) if err.size else 0.0,
        max_ulp_err=float(ulps.max()) if ulps.size else 0.0,
        mismatched=int(over.sum()),
        total=int(expected.size),
        worst_index=worst,
        problems=problems,
        bound_at_worst=float(limit[worst]) if worst is not None else 0.0,
        inaccurate=int((over & finite).sum()),
    )
