"""Rounding measures that the op families' conditioning scales are built from.

A scale S means: an implementation that rounds every intermediate once may be off by about
eps * S. S is the sum of the magnitudes that get rounded on the way, measured on
shift-invariant terms (max z - z_j, logsumexp(z - max z)), so a large common offset of the
logits does not buy tolerance. Exact operations (a hard 0/1 label times a value, 1 - p for
p >= 1/2) add nothing. The tolerance model multiplies S by a per-dtype factor.
"""
import numpy as np

from reference.numerics.terms import times


def is_hard(labels: np.ndarray) -> np.ndarray:
    """Labels of exactly 0 or 1 multiply without rounding."""
    return (labels == 0) | (labels == 1)


def summation(terms: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Rounding of a sum of k terms: about log2(k) roundings of the running magnitude."""
    terms = np.abs(terms)
    k = terms.size if axis is None else terms.shape[axis]
    return np.sum(terms, axis=axis) * np.ceil(np.log2(max(k, 1)))


def log_term(weight: np.ndarray | float, argument: np.ndarray, computed: np.ndarray | float) -> np.ndarray:
    """|w| (|log a| + 1 if a was rounded on the way): the log of a rounded value is off by eps."""
    with np.errstate(divide="ignore"):
        magnitude = np.abs(np.log(argument))
    return np.abs(times(weight, magnitude + computed))


def two_terms(first: np.ndarray, second: np.ndarray | float = 0.0,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A gradient that is the sum of two computed terms, and its scale 2 (|first| + |second|);
    zero outside mask (where a clip stops the gradient, as clip_by_value does)."""
    grad, scale = first + second, 2.0 * (np.abs(first) + np.abs(second))
    if mask is None:
        return grad, scale
    return np.where(mask, grad, 0.0), np.where(mask, scale, 0.0)
