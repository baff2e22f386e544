"""Which tier of the reference computes a check's expected value.

The fast tier (plain float64, reference.numerics.fast_softmax) promises an error of at most
fast_tier_ulps(V) units of 2**-53 times the conditioning scale; a check's tolerance is at
least one unit of the dtype's epsilon times the same scale. The fast tier is used where its
whole bound is at most 1/MARGIN of that unit, so that it moves no verdict: every float32,
bfloat16 and float16 check at any vocabulary a float32 can index. Elsewhere (float64 checks)
the double-double tier computes the value, within an ulp of float64. A check's conditioning
scales follow its values' tier (reference.numerics.fast_scales: within 2**-42 of their
formula in the fast tier).
"""
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from reference.dtypes import eps
from reference.numerics.fast_softmax import U, fast_tier_ulps

MARGIN = 2.0 ** 16
Values = TypeVar("Values")  # what both tiers' functions return: an array, or a tuple of them


def fast_tier_holds(dtype: str, classes: int) -> bool:
    """Whether the fast tier's bound lies MARGIN times inside a dtype-epsilon of the scale."""
    return fast_tier_ulps(classes) * U * MARGIN <= eps(dtype)


def tier(dtype: str, classes: int) -> str:
    """The name of the tier that computes a softmax cross-entropy for this dtype and vocabulary."""
    return "fast" if fast_tier_holds(dtype, classes) else "double-double"


def is_fast(logits: npt.ArrayLike, axis: int, dtype: str) -> bool:
    """Whether the fast tier computes a softmax cross-entropy of these logits (classes on axis)."""
    return fast_tier_holds(dtype, np.shape(logits)[axis])


def by_tier(fast_function: Callable[..., Values], exact_function: Callable[..., Values], logits: npt.ArrayLike,
            labels: npt.ArrayLike, axis: int, dtype: str, *row_inputs: npt.ArrayLike) -> Values:
    """fast_function(logits, labels, *row_inputs, axis, exact=exact_function) in the fast tier,
    else exact_function(logits, labels, *row_inputs, axis), the double-double tier."""
    if is_fast(logits, axis, dtype):
        return fast_function(logits, labels, *row_inputs, axis, exact=exact_function)
    return exact_function(logits, labels, *row_inputs, axis)
