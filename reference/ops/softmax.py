"""Softmax cross-entropy from logits: softmax_cross_entropy (soft labels) and
sparse_softmax_cross_entropy (integer labels), with gradients and conditioning.

Two tiers (reference.tiers picks one per dtype): double-double rounded once, shifted by the
row's maximum so that a common offset of the logits costs nothing, for float64 checks; and
the fast tier (reference.numerics.fast_softmax: plain float64, chunked and threaded, within
a proven bound far inside the tolerance) for float32, bfloat16 and float16 checks, and their
conditioning scales (reference/ops/softmax_scales.py, reference.numerics.fast_scales: a scale
needs a few correct bits, and has 42; each from the exponential pass of its value). The
gradient is softmax(z) * sum(y) - y, softmax(z) - y only when the labels sum to 1 (the
article's [1, 2] do not). A row without a finite maximum (all -inf, or a +inf or NaN logit)
gives NaN. Unreduced losses drop the class axis.
"""
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from reference.declaration import Op, Variant
from reference.option_declaration import Option, taking
from reference.numerics import doubledouble as dd
from reference.numerics import fast_scales
from reference.numerics import fast_softmax as fast
from reference.numerics.softmax import along, dd_log_softmax, log_softmax, logsumexp, softmax_parts, take_class
from reference.numerics.terms import as_float64, dd_times
from reference.options import AXIS, IGNORE_INDEX, LABEL_SMOOTHING, REDUCTION, WEIGHT
from reference.ops.softmax_scales import (exact_dense_grad_scale, exact_dense_scale, exact_sparse_grad_scale,
                                          exact_sparse_scale, probabilities, softmax_cross_entropy_grad_scale,
                                          softmax_cross_entropy_scale, softmax_terms,
                                          sparse_softmax_cross_entropy_grad_scale, sparse_softmax_cross_entropy_scale,
                                          z_loss_grad_scale, z_loss_scale)
from reference.tiers import by_tier

__all__ = ["SOFTMAX_CROSS_ENTROPY", "SPARSE_SOFTMAX_CROSS_ENTROPY", "softmax_cross_entropy",
           "softmax_cross_entropy_grad", "softmax_cross_entropy_grad_scale", "softmax_cross_entropy_scale",
           "softmax_terms", "sparse_softmax_cross_entropy", "sparse_softmax_cross_entropy_grad",
           "sparse_softmax_cross_entropy_grad_scale", "sparse_softmax_cross_entropy_scale", "z_loss_grad_scale",
           "z_loss_scale"]


# The mathematics --------------------------------------------------------------------------


def softmax_cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                          dtype: str = "float64") -> np.ndarray:
    """-sum_c y_c log softmax(z)_c; labels need not sum to 1."""
    return by_tier(fast.dense_loss, _exact_softmax_cross_entropy, logits, labels, axis, dtype)


def sparse_softmax_cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                 dtype: str = "float64") -> np.ndarray:
    """logsumexp(z) - z[label]."""
    return by_tier(fast.sparse_loss, _exact_sparse_softmax_cross_entropy, logits, labels, axis, dtype)


def softmax_cross_entropy_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                               dtype: str = "float64") -> np.ndarray:
    """d/dz = softmax(z) * sum(y) - y."""
    return by_tier(fast.dense_grad, _exact_softmax_cross_entropy_grad, logits, labels, axis, dtype)


def sparse_softmax_cross_entropy_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                      dtype: str = "float64") -> np.ndarray:
    """d/dz = softmax(z) - onehot(label)."""
    return by_tier(fast.sparse_grad, _exact_sparse_softmax_cross_entropy_grad, logits, labels, axis, dtype)


def sparse_softmax_cross_entropy_and_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                          dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_grad), the same values,
    from one pass over the logits in the fast tier (what a training step asks of a kernel)."""
    return by_tier(fast.sparse_loss_and_grad, _exact_sparse_softmax_cross_entropy_and_grad, logits, labels, axis,
                    dtype)


def softmax_cross_entropy_loss_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                        dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(softmax_cross_entropy, softmax_cross_entropy_scale of it), one pass in the fast tier."""
    return by_tier(fast_scales.dense_loss_and_scale, _exact_softmax_cross_entropy_and_scale, logits, labels, axis,
                    dtype)


def sparse_softmax_cross_entropy_loss_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                               dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_scale of it), one pass in the fast tier."""
    return by_tier(fast_scales.sparse_loss_and_scale, _exact_sparse_softmax_cross_entropy_and_scale, logits, labels,
                    axis, dtype)


def softmax_cross_entropy_grad_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                        dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(softmax_cross_entropy_grad, softmax_cross_entropy_grad_scale), one pass in the fast tier."""
    return by_tier(fast_scales.dense_grad_and_scale, _exact_softmax_cross_entropy_grad_and_scale, logits, labels,
                    axis, dtype)


def sparse_softmax_cross_entropy_grad_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1,
                                               dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(sparse_softmax_cross_entropy_grad, sparse_softmax_cross_entropy_grad_scale), one pass in the fast tier."""
    return by_tier(fast_scales.sparse_grad_and_scale, _exact_sparse_softmax_cross_entropy_grad_and_scale, logits,
                    labels, axis, dtype)


# The double-double tier -------------------------------------------------------------------


def _exact_softmax_cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    log_p = dd_log_softmax(logits, axis)
    y = np.broadcast_to(as_float64(labels), log_p.hi.shape)
    return -dd.sum(dd_times(dd.of(y), log_p), axis).hi


def _exact_sparse_softmax_cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """-log_softmax(z)[label], so that nothing cancels."""
    return -take_class(log_softmax(logits, axis), labels, axis)


def _exact_sparse_softmax_cross_entropy_and_grad(logits: npt.ArrayLike, labels: npt.ArrayLike,
                                                 axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    return (_exact_sparse_softmax_cross_entropy(logits, labels, axis),
            _exact_sparse_softmax_cross_entropy_grad(logits, labels, axis))


def _exact_sparse_softmax_cross_entropy_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike,
                                                  axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    loss = _exact_sparse_softmax_cross_entropy(logits, labels, axis)
    return loss, exact_sparse_scale(logits, labels, loss, axis)


def _exact_softmax_cross_entropy_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike,
                                           axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    loss = _exact_softmax_cross_entropy(logits, labels, axis)
    return loss, exact_dense_scale(logits, labels, loss, axis)


def _exact_sparse_softmax_cross_entropy_grad_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike,
                                                       axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    return (_exact_sparse_softmax_cross_entropy_grad(logits, labels, axis),
            exact_sparse_grad_scale(logits, labels, axis))


def _exact_softmax_cross_entropy_grad_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike,
                                                axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    return (_exact_softmax_cross_entropy_grad(logits, labels, axis), exact_dense_grad_scale(logits, labels, axis))


def _exact_softmax_cross_entropy_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """d/dz = softmax(z) * sum(y) - y (softmax(z) - y only when the labels sum to 1).

    softmax(z) = e / (1 + rest) (softmax_parts). Where the top class has most of the mass
    (rest < 1), its softmax is 1 - rest / (1 + rest) and its gradient is computed as
    sum(other labels) - sum(y) rest / (1 + rest): a confident, correct prediction keeps its
    gradient of -1e-20 instead of cancelling 1 - 1e-20 against 1.
    """
    parts = softmax_parts(logits, axis)
    y = np.broadcast_to(np.asarray(labels, np.float64), parts.e.hi.shape)
    is_top = np.arange(y.shape[axis]).reshape(along(axis, y.ndim)) == parts.top
    total = dd.expand_dims(dd.sum(dd.of(y), axis), axis)
    others = dd.expand_dims(dd.sum(dd.of(np.where(is_top, 0.0, y)), axis), axis)
    q = parts.softmax_unscaled()
    grad = dd.sub(dd.mul(dd.scale(q, parts.e_exponent), total), dd.of(y)).hi
    confident = dd.sub(others, dd.mul(total, dd.div(parts.rest, dd.add(dd.of(1.0), parts.rest)))).hi
    grad = np.where(is_top & parts.finite & (parts.rest.hi < 1.0), confident, grad)
    # Where the label is 0 the gradient is softmax * sum(y): rounded once, even if subnormal.
    grad = np.where((y == 0) & ~is_top, dd.value_scaled(dd.mul(q, total), parts.e_exponent), grad)
    return np.where(parts.finite, grad, np.nan)


def _exact_sparse_softmax_cross_entropy_grad(logits: npt.ArrayLike, labels: npt.ArrayLike,
                                             axis: int = -1) -> np.ndarray:
    """softmax(z) - onehot(label), with 1 - softmax = rest / (1 + rest) at the top class."""
    parts = softmax_parts(logits, axis)
    label = np.expand_dims(np.asarray(labels, np.int64), axis)
    q = parts.softmax_unscaled()
    p_label = dd.scale(dd.take_along_axis(q, label, axis), np.take_along_axis(parts.e_exponent, label, axis))
    at_label = dd.where(label == parts.top, dd.neg(dd.div(parts.rest, dd.add(dd.of(1.0), parts.rest))),
                        dd.sub(p_label, dd.of(1.0)))
    grad = dd.value_scaled(q, parts.e_exponent)  # the softmax, rounded once even where subnormal
    np.put_along_axis(grad, label, at_label.hi, axis=axis)
    return np.where(parts.finite, grad, np.nan)


def with_z_loss(loss: np.ndarray, logits: npt.ArrayLike, z_loss: float, axis: int) -> np.ndarray:
    """loss + s * logsumexp(z)^2 per row: the z-loss (PaLM, Liger-Kernel's lse_square_scale)
    that keeps the normaliser near 0. s = 0 leaves the loss untouched."""
    if not z_loss:
        return loss
    lse = logsumexp(logits, axis)
    return loss + z_loss * lse * lse


def with_z_loss_grad(grad: np.ndarray, logits: npt.ArrayLike, z_loss: float, axis: int) -> np.ndarray:
    """d/dz of s * lse^2 = 2 s lse softmax(z), added to the cross-entropy's gradient."""
    if not z_loss:
        return grad
    lse = np.expand_dims(logsumexp(logits, axis), axis)
    return grad + 2.0 * z_loss * lse * np.exp(log_softmax(logits, axis))


def softmax_cross_entropy_label_grad(logits: npt.ArrayLike, axis: int = -1,
                                     dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """d/dy = -log softmax(z): the loss is linear in its labels."""
    log_p = log_softmax(logits, axis)
    return -log_p, np.abs(log_p) + softmax_terms(logits, axis, dtype)


# Soft-capping -------------------------------------------------------------------------------


def soft_cap(logits: npt.ArrayLike, softcap: float | None) -> np.ndarray:
    """c tanh(z / c) (Gemma 2's logit soft-capping); a -inf logit, a masked or padded class,
    stays -inf: the cap bounds the logits, it does not unmask a class (c tanh(-inf / c) = -c
    would give every padded lane a probability)."""
    z = np.asarray(logits, np.float64)
    if softcap is None:
        return z
    with np.errstate(invalid="ignore"):
        return np.where(z == -np.inf, -np.inf, softcap * np.tanh(z / softcap))


def _through_cap(logits: npt.ArrayLike, capped: np.ndarray, grad: np.ndarray, scale: np.ndarray,
                 softcap: float | None, axis: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The chain rule through the cap: d/dz = d/dc sech^2(z / c), 0 at a mask. Its scale adds
    the rounding of the capped logits (at their own magnitude: the cap is not shift-invariant)
    through the softmax, and the slope 1 - tanh^2 formed from a rounded tanh (2 tanh^2)."""
    if softcap is None:
        return grad, scale
    z = np.asarray(logits, np.float64)
    masked = z == -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        slope = np.where(masked, 0.0, 1.0 / np.cosh(z / softcap) ** 2)
        tanh2 = np.where(masked, 1.0, (capped / softcap) ** 2)
    p, shift = _capped_shift(capped, axis, dtype)
    return grad * slope, (scale + p * shift) * slope + np.abs(grad) * 2.0 * tanh2


def _capped_size(capped: np.ndarray) -> np.ndarray:
    """|c_j|, 0 at a mask: the magnitude each capped logit is rounded at."""
    return np.where(np.isfinite(capped), np.abs(capped), 0.0)


def _capped_shift(capped: np.ndarray, axis: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(p, |c_j| + sum_k p_k |c_k|): rounding each capped logit at its magnitude moves
    log p_j by at most the second, and p_j by p_j times it."""
    p = probabilities(capped, axis, dtype)
    size = _capped_size(capped)
    return p, size + np.sum(p * size, axis=axis, keepdims=True)


def _softmax_variant(loss: Callable[..., np.ndarray], loss_and_scale: Callable[..., tuple[np.ndarray, np.ndarray]],
                     loss_scale: Callable[..., np.ndarray],
                     grad_and_scale: Callable[..., tuple[np.ndarray, np.ndarray]],
                     label_grad: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None) -> Variant:
    """The exact variant of a softmax op, soft-capped when `softcap` is given: each function
    of the plain op is evaluated on c tanh(z / c), and its gradient taken through the cap.
    Without a cap or a z-loss, a loss and its scale come from one pass (loss_and_scale), as
    a gradient and its scale always do (grad_and_scale)."""
    def capped_loss(z: np.ndarray, y: np.ndarray, dtype: str, axis: int, z_loss: float,
                    softcap: float | None) -> np.ndarray:
        capped = soft_cap(z, softcap)
        return with_z_loss(loss(capped, y, axis, dtype), capped, z_loss, axis)

    def grad_of_capped(capped: np.ndarray, y: np.ndarray, dtype: str, axis: int,
                       z_loss: float) -> tuple[np.ndarray, np.ndarray]:
        grad, scale = grad_and_scale(capped, y, axis, dtype)
        if z_loss:
            grad, scale = with_z_loss_grad(grad, capped, z_loss, axis), scale + z_loss_grad_scale(
                capped, z_loss, axis, dtype)
        return grad, scale

    def capped_scale(z: np.ndarray, y: np.ndarray, value: np.ndarray, dtype: str, axis: int, z_loss: float,
                     softcap: float | None) -> np.ndarray:
        capped = soft_cap(z, softcap)
        scale = loss_scale(capped, y, value, axis, dtype) + z_loss_scale(capped, z_loss, axis, dtype)
        if softcap is None:
            return scale
        # sum_j |dL/dc_j| |c_j|: the loss moved by rounding each capped logit at its magnitude
        grad = grad_of_capped(capped, y, dtype, axis, z_loss)[0]
        return scale + np.sum(np.abs(grad) * _capped_size(capped), axis=axis)

    def capped_loss_and_scale(z: np.ndarray, y: np.ndarray, dtype: str, axis: int, z_loss: float,
                              softcap: float | None) -> tuple[np.ndarray, np.ndarray]:
        if z_loss or softcap is not None:
            value = capped_loss(z, y, dtype, axis, z_loss, softcap)
            return value, capped_scale(z, y, value, dtype, axis, z_loss, softcap)
        return loss_and_scale(z, y, axis, dtype)

    def capped_grad(z: np.ndarray, y: np.ndarray, dtype: str, axis: int, z_loss: float,
                    softcap: float | None) -> tuple[np.ndarray, np.ndarray]:
        capped = soft_cap(z, softcap)
        grad, scale = grad_of_capped(capped, y, dtype, axis, z_loss)
        return _through_cap(z, capped, grad, scale, softcap, axis, dtype)

    def capped_label_grad(z: np.ndarray, y: np.ndarray, dtype: str, axis: int, z_loss: float,
                          softcap: float | None) -> tuple[np.ndarray, np.ndarray]:
        assert label_grad is not None  # the variant offers this function only where label_grad is given
        capped = soft_cap(z, softcap)
        grad_labels, scale = label_grad(capped, axis, dtype)
        if softcap is None:
            return grad_labels, scale
        p, shift = _capped_shift(capped, axis, dtype)
        return grad_labels, scale + np.where(p > 0, shift, 0.0)

    return Variant(loss=capped_loss, scale=capped_scale, loss_and_scale=capped_loss_and_scale, grad=capped_grad,
                   grad_labels=capped_label_grad if label_grad else None)


# Declarations ------------------------------------------------------------------------------

def _with_smoothing_conventions(exact: Variant) -> dict[str, Variant]:

    """The mathematics, and Megatron-LM's (and NeMo's) label smoothing: the label keeps 1 - eps,
    each other class eps / (K - 1), where PyTorch puts eps / K on every class (Megatron-LM
    #737, #7464: the two conventions differ by K / (K - 1) in eps)."""
    return {"exact": exact, "megatron_smoothing": replace(exact, smoothing="other_classes")}


Z_LOSS = Option(name="z_loss", kind="number", minimum=0.0, default=0.0,
                description="adds z_loss logsumexp(z)^2 per example (PaLM's auxiliary loss)")
SOFTCAP = Option(name="softcap", kind="number", minimum=0.0, exclusive_minimum=True, default=None, nullable=True,
                 description="logits become c tanh(z / c); -inf stays a mask")

SOFTMAX_CROSS_ENTROPY = Op(
    name="softmax_cross_entropy", prediction="logits", integer_labels=False, class_axis=True,
    options=taking(REDUCTION, AXIS, LABEL_SMOOTHING, WEIGHT, Z_LOSS, SOFTCAP),
    variants=_with_smoothing_conventions(_softmax_variant(
        softmax_cross_entropy, softmax_cross_entropy_loss_and_scale, softmax_cross_entropy_scale,
        softmax_cross_entropy_grad_and_scale, softmax_cross_entropy_label_grad)),
)

SPARSE_SOFTMAX_CROSS_ENTROPY = Op(
    name="sparse_softmax_cross_entropy", prediction="logits", integer_labels=True, class_axis=True,
    options=taking(REDUCTION, AXIS, LABEL_SMOOTHING, WEIGHT, IGNORE_INDEX, Z_LOSS, SOFTCAP),
    dense_form="softmax_cross_entropy",
    variants=_with_smoothing_conventions(_softmax_variant(
        sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_loss_and_scale, sparse_softmax_cross_entropy_scale,
        sparse_softmax_cross_entropy_grad_and_scale)),
)

DECLARATIONS = (SOFTMAX_CROSS_ENTROPY, SPARSE_SOFTMAX_CROSS_ENTROPY)
