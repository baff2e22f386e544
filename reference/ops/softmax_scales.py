"""The conditioning scales of the softmax cross-entropies (reference/ops/softmax.py): what an
implementation that rounds each intermediate once may be off by, in units of eps.

Each takes the dtype under test and follows its values' tier (reference/tiers.py): in the fast
tier's dtypes (float32, bfloat16, float16) it is computed in plain float64, in row blocks
(reference.numerics.fast_scales: within 2**-42 relative of its formula, which moves no
verdict); for float64 checks, from the double-double tier's pieces (logsumexp, log_softmax
rounded once), as before. A scale is a bound multiplier: it needs a few correct bits.
"""
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from reference.numerics import fast_scales
from reference.numerics.conditioning import summation
from reference.numerics.softmax import log_softmax, logsumexp, onehot, take_class
from reference.numerics.terms import times
from reference.tiers import by_tier, is_fast


def row_logsumexp(logits: npt.ArrayLike, axis: int, dtype: str) -> np.ndarray:
    """logsumexp along axis, for a scale: plain float64 in the fast tier."""
    if is_fast(logits, axis, dtype):
        return fast_scales.logsumexp(logits, axis, exact=logsumexp)
    return logsumexp(logits, axis)


def probabilities(logits: npt.ArrayLike, axis: int, dtype: str) -> np.ndarray:
    """softmax along axis, for a scale: plain float64 in the fast tier."""
    if is_fast(logits, axis, dtype):
        return fast_scales.softmax(logits, axis, exact=_exact_probabilities)
    return _exact_probabilities(logits, axis)


def _exact_probabilities(logits: npt.ArrayLike, axis: int) -> np.ndarray:
    return np.exp(log_softmax(logits, axis))


def softmax_terms(logits: npt.ArrayLike, axis: int, dtype: str = "float64") -> np.ndarray:
    """Per class: 2 (max z - z_j) + logsumexp(z - max z) + 1, the magnitudes an lse rounds."""
    if is_fast(logits, axis, dtype):
        return fast_scales.softmax_terms(logits, axis, exact=_exact_softmax_terms)
    return _exact_softmax_terms(logits, axis)


def _exact_softmax_terms(logits: npt.ArrayLike, axis: int) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore"):
        gap = m - z
        lse = np.expand_dims(logsumexp(z - m, axis), axis)
    return 2.0 * gap + lse + 1.0


def z_loss_scale(logits: npt.ArrayLike, z_loss: float, axis: int, dtype: str = "float64") -> np.ndarray | float:
    """s lse^2 moves by 2 s |lse| sum_j p_j |z_j| eps when the logits are rounded (the z-loss is
    not shift-invariant: its scale is the logits' own magnitude), and rounds at s lse^2."""
    if not z_loss:
        return 0.0
    z = np.asarray(logits, np.float64)
    lse = row_logsumexp(z, axis, dtype)
    with np.errstate(invalid="ignore"):
        weighted = np.sum(probabilities(z, axis, dtype) * np.abs(z), axis=axis)
    return z_loss * (3.0 * lse * lse + 2.0 * np.abs(lse) * weighted)


def z_loss_grad_scale(logits: npt.ArrayLike, z_loss: float, axis: int, dtype: str = "float64") -> np.ndarray | float:
    """2 s lse p_j: the roundings of lse (at the logits' magnitude) and of p_j."""
    if not z_loss:
        return 0.0
    z = np.asarray(logits, np.float64)
    lse = np.expand_dims(row_logsumexp(z, axis, dtype), axis)
    p = probabilities(z, axis, dtype)
    with np.errstate(invalid="ignore"):
        weighted = np.sum(p * np.abs(z), axis=axis, keepdims=True)
    return 2.0 * z_loss * p * (np.abs(lse) * (softmax_terms(z, axis, dtype) + 1.0) + weighted)


def softmax_cross_entropy_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, loss: np.ndarray, axis: int = -1,
                                dtype: str = "float64") -> np.ndarray:
    """|loss| + sum_j |y_j| t_j, and the summation's rounding of those terms."""
    return by_tier(fast_scales.dense_scale, exact_dense_scale, logits, labels, axis, dtype, loss)


def sparse_softmax_cross_entropy_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, loss: np.ndarray, axis: int = -1,
                                       dtype: str = "float64") -> np.ndarray:
    """|loss| + t_label + log2 V."""
    return by_tier(fast_scales.sparse_scale, exact_sparse_scale, logits, labels, axis, dtype, loss)


def softmax_cross_entropy_grad_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                     dtype: str = "float64") -> np.ndarray:
    """p_j sum(y) - y_j: p_j = exp(z_j - lse) carries the rounding of its exponent."""
    return by_tier(fast_scales.dense_grad_and_scale, _with_gradient(exact_dense_grad_scale), logits, labels, axis,
                   dtype)[1]


def sparse_softmax_cross_entropy_grad_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                            dtype: str = "float64") -> np.ndarray:
    """p_j - [j == label]: the subtraction at the label rounds at magnitude 1."""
    return by_tier(fast_scales.sparse_grad_and_scale, _with_gradient(exact_sparse_grad_scale), logits, labels, axis,
                   dtype)[1]


def _with_gradient(exact_scale: Callable[[npt.ArrayLike, npt.ArrayLike, int], np.ndarray],
                   ) -> Callable[[npt.ArrayLike, npt.ArrayLike, int], tuple[np.ndarray, np.ndarray]]:
    """A gradient's exact scale as the fast tier's grad_and_scale asks (the gradient unused)."""
    def exact(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int) -> tuple[np.ndarray, np.ndarray]:
        scale = exact_scale(logits, labels, axis)
        return np.zeros_like(scale), scale
    return exact


def exact_dense_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, loss: np.ndarray, axis: int = -1) -> np.ndarray:
    terms = times(np.abs(labels), _exact_softmax_terms(logits, axis))
    return np.abs(loss) + np.sum(terms, axis=axis) + summation(terms, axis)


def exact_sparse_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, loss: np.ndarray, axis: int = -1) -> np.ndarray:
    terms = take_class(_exact_softmax_terms(logits, axis), labels, axis)
    return np.abs(loss) + terms + np.log2(max(np.shape(logits)[axis], 2))


def exact_dense_grad_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    p = _exact_probabilities(z, axis)
    total = np.abs(np.sum(labels, axis=axis, keepdims=True))
    return times(p * total, _exact_softmax_terms(z, axis)) + np.abs(labels)  # 0 at a masked (-inf) class


def exact_sparse_grad_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:

    z = np.asarray(logits, np.float64)
    p = _exact_probabilities(z, axis)
    return times(p, _exact_softmax_terms(z, axis)) + onehot(labels, p, axis)  # 0 at a masked (-inf) class
