"""What kind of difference a check shows: what a manifest entry says it expects, so that an
entry excuses only the behaviour it describes.

    raises      the framework raised instead of returning
    dtype       it returned another dtype than it was given
    shape       it returned another shape
    nan         NaN where the reference is a number
    inf         an infinity where the reference is finite (or the other infinity)
    finite      a finite number where the reference is NaN (undefined) or infinite
    inaccurate  finite where the reference is finite, but outside the tolerance
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from conformance.core.compare import Verdict

KINDS = ("raises", "dtype", "shape", "nan", "inf", "finite", "inaccurate")


def classify(expected: npt.ArrayLike, actual: npt.ArrayLike, verdict: Verdict, dtype: str,
             actual_dtype: str) -> set[str]:
    """The kinds of difference between one result and the reference (empty when it passed)."""
    if verdict.passed:
        return set()
    kinds = {"dtype"} if actual_dtype != dtype else set()
    expected = np.asarray(expected, np.float64)
    actual = np.asarray(actual, np.float64)
    if actual.shape != expected.shape:
        return kinds | {"shape"}
    if (np.isnan(actual) & ~np.isnan(expected)).any():
        kinds.add("nan")
    if (np.isinf(actual) & ~np.isnan(expected) & (actual != expected)).any():
        kinds.add("inf")
    if (np.isfinite(actual) & ~np.isfinite(expected)).any():
        kinds.add("finite")
    if verdict.inaccurate:
        kinds.add("inaccurate")
    return kinds
