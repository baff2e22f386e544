"""Softmax cross-entropy from logits: softmax_cross_entropy (soft labels) and
sparse_softmax_cross_entropy (integer labels), with gradients and conditioning.

Two tiers (reference.tiers picks one per dtype): double-double rounded once, shifted by the
row's maximum so that a common offset of the logits costs nothing, for float64 checks; and
the fast tier (reference.numerics.fast_softmax: plain float64, chunked and threaded, within
a proven bound far inside the tolerance) for float32, bfloat16 and float16 checks. The
gradient is softmax(z) * sum(y) - y, softmax(z) - y only when the labels sum to 1 (the
article's [1, 2] do not). A row without a finite maximum (all -inf, or a +inf or NaN logit)
gives NaN. Unreduced losses drop the class axis.
"""
from dataclasses import replace

import numpy as np

from reference import tiers
from reference.declaration import Op, Variant
from reference.numerics import doubledouble as dd
from reference.numerics import fast_softmax as fast
from reference.numerics.conditioning import summation
from reference.numerics.softmax import along, dd_log_softmax, log_softmax, logsumexp, onehot, softmax_parts, take_class
from reference.numerics.terms import as_float64, dd_times, times


# The mathematics --------------------------------------------------------------------------


def softmax_cross_entropy(logits, labels, axis: int = -1, dtype: str = "float64") -> np.ndarray:
    """-sum_c y_c log softmax(z)_c; labels need not sum to 1."""
    return _by_tier(fast.dense_loss, _exact_softmax_cross_entropy, logits, labels, axis, dtype)


def sparse_softmax_cross_entropy(logits, labels, axis: int = -1, dtype: str = "float64") -> np.ndarray:
    """logsumexp(z) - z[label]."""
    return _by_tier(fast.sparse_loss, _exact_sparse_softmax_cross_entropy, logits, labels, axis, dtype)


def softmax_cross_entropy_grad(logits, labels, axis: int = -1, dtype: str = "float64") -> np.ndarray:
    """d/dz = softmax(z) * sum(y) - y."""
    return _by_tier(fast.dense_grad, _exact_softmax_cross_entropy_grad, logits, labels, axis, dtype)


def sparse_softmax_cross_entropy_grad(logits, labels, axis: int = -1, dtype: str = "float64") -> np.ndarray:
    """d/dz = softmax(z) - onehot(label)."""
    return _by_tier(fast.sparse_grad, _exact_sparse_softmax_cross_entropy_grad, logits, labels, axis, dtype)


def sparse_softmax_cross_entropy_and_grad(logits, labels, axis: int = -1,
                                          dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_grad), the same values,
    from one pass over the logits in the fast tier (what a training step asks of a kernel)."""
    return _by_tier(fast.sparse_loss_and_grad, _exact_sparse_softmax_cross_entropy_and_grad, logits, labels, axis,
                    dtype)


def _by_tier(fast_function, exact_function, logits, labels, axis, dtype):
    """The fast tier where its bound fits the dtype under test (reference/tiers.py), else double-double."""
    if tiers.fast_tier_holds(dtype, np.shape(logits)[axis]):
        return fast_function(logits, labels, axis, exact=exact_function)
    return exact_function(logits, labels, axis)


# The double-double tier -------------------------------------------------------------------


def _exact_softmax_cross_entropy(logits, labels, axis: int = -1) -> np.ndarray:
    log_p = dd_log_softmax(logits, axis)
    y = np.broadcast_to(as_float64(labels), log_p.hi.shape)
    return -dd.sum(dd_times(dd.of(y), log_p), axis).hi


def _exact_sparse_softmax_cross_entropy(logits, labels, axis: int = -1) -> np.ndarray:
    """-log_softmax(z)[label], so that nothing cancels."""
    return -take_class(log_softmax(logits, axis), labels, axis)


def _exact_sparse_softmax_cross_entropy_and_grad(logits, labels, axis: int = -1):
    return (_exact_sparse_softmax_cross_entropy(logits, labels, axis),
            _exact_sparse_softmax_cross_entropy_grad(logits, labels, axis))


def _exact_softmax_cross_entropy_grad(logits, labels, axis: int = -1) -> np.ndarray:
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


def _exact_sparse_softmax_cross_entropy_grad(logits, labels, axis: int = -1) -> np.ndarray:
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


def with_z_loss(loss, logits, z_loss: float, axis: int) -> np.ndarray:
    """loss + s * logsumexp(z)^2 per row: the z-loss (PaLM, Liger-Kernel's lse_square_scale)
    that keeps the normaliser near 0. s = 0 leaves the loss untouched."""
    if not z_loss:
        return loss
    lse = logsumexp(logits, axis)
    return loss + z_loss * lse * lse


def with_z_loss_grad(grad, logits, z_loss: float, axis: int) -> np.ndarray:
    """d/dz of s * lse^2 = 2 s lse softmax(z), added to the cross-entropy's gradient."""
    if not z_loss:
        return grad
    lse = np.expand_dims(logsumexp(logits, axis), axis)
    return grad + 2.0 * z_loss * lse * np.exp(log_softmax(logits, axis))


def softmax_cross_entropy_label_grad(logits, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """d/dy = -log softmax(z): the loss is linear in its labels."""
    log_p = log_softmax(logits, axis)
    return -log_p, np.abs(log_p) + softmax_terms(logits, axis)


# Conditioning -----------------------------------------------------------------------------


def softmax_terms(logits, axis: int) -> np.ndarray:
    """Per class: 2 (max z - z_j) + logsumexp(z - max z) + 1, the magnitudes an lse rounds."""
    z = np.asarray(logits, np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore"):
        gap = m - z
        lse = np.expand_dims(logsumexp(z - m, axis), axis)
    return 2.0 * gap + lse + 1.0


def z_loss_scale(logits, z_loss: float, axis: int) -> np.ndarray:
    """s lse^2 moves by 2 s |lse| sum_j p_j |z_j| eps when the logits are rounded (the z-loss is
    not shift-invariant: its scale is the logits' own magnitude), and rounds at s lse^2."""
    if not z_loss:
        return 0.0
    z = np.asarray(logits, np.float64)
    lse = logsumexp(z, axis)
    with np.errstate(invalid="ignore"):
        weighted = np.sum(np.exp(log_softmax(z, axis)) * np.abs(z), axis=axis)
    return z_loss * (3.0 * lse * lse + 2.0 * np.abs(lse) * weighted)


def z_loss_grad_scale(logits, z_loss: float, axis: int) -> np.ndarray:
    """2 s lse p_j: the roundings of lse (at the logits' magnitude) and of p_j."""
    if not z_loss:
        return 0.0
    z = np.asarray(logits, np.float64)
    lse = np.expand_dims(logsumexp(z, axis), axis)
    p = np.exp(log_softmax(z, axis))
    with np.errstate(invalid="ignore"):
        weighted = np.sum(p * np.abs(z), axis=axis, keepdims=True)
    return 2.0 * z_loss * p * (np.abs(lse) * (softmax_terms(z, axis) + 1.0) + weighted)


def softmax_cross_entropy_scale(logits, labels, loss, axis: int = -1) -> np.ndarray:
    terms = times(np.abs(labels), softmax_terms(logits, axis))
    return np.abs(loss) + np.sum(terms, axis=axis) + summation(terms, axis)


def sparse_softmax_cross_entropy_scale(logits, labels, loss, axis: int = -1) -> np.ndarray:
    terms = take_class(softmax_terms(logits, axis), labels, axis)
    return np.abs(loss) + terms + np.log2(max(np.shape(logits)[axis], 2))


def softmax_cross_entropy_grad_scale(logits, labels, axis: int = -1) -> np.ndarray:
    """p_j sum(y) - y_j: p_j = exp(z_j - lse) carries the rounding of its exponent."""
    z = np.asarray(logits, np.float64)
    p = np.exp(log_softmax(z, axis))
    total = np.abs(np.sum(labels, axis=axis, keepdims=True))
    return p * total * softmax_terms(z, axis) + np.abs(labels)


def sparse_softmax_cross_entropy_grad_scale(logits, labels, axis: int = -1) -> np.ndarray:
    """p_j - [j == label]: the subtraction at the label rounds at magnitude 1."""
    z = np.asarray(logits, np.float64)
    p = np.exp(log_softmax(z, axis))
    return p * softmax_terms(z, axis) + onehot(labels, p, axis)


# Soft-capping -------------------------------------------------------------------------------


def soft_cap(logits, softcap: float | None) -> np.ndarray:
    """c tanh(z / c) (Gemma 2's logit soft-capping); a -inf logit, a masked or padded class,
    stays -inf: the cap bounds the logits, it does not unmask a class (c tanh(-inf / c) = -c
    would give every padded lane a probability)."""
    z = np.asarray(logits, np.float64)
    if softcap is None:
        return z
    with np.errstate(invalid="ignore"):
        return np.where(z == -np.inf, -np.inf, softcap * np.tanh(z / softcap))


def _through_cap(logits, capped, grad, scale, softcap, axis):
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
    p, shift = _capped_shift(capped, axis)
    return grad * slope, (scale + p * shift) * slope + np.abs(grad) * 2.0 * tanh2


def _capped_size(capped):
    """|c_j|, 0 at a mask: the magnitude each capped logit is rounded at."""
    return np.where(np.isfinite(capped), np.abs(capped), 0.0)


def _capped_shift(capped, axis):
    """(p, |c_j| + sum_k p_k |c_k|): rounding each capped logit at its magnitude moves
    log p_j by at most the second, and p_j by p_j times it."""
    p = np.exp(log_softmax(capped, axis))
    size = _capped_size(capped)
    return p, size + np.sum(p * size, axis=axis, keepdims=True)


def _softmax_variant(loss, loss_scale, grad, grad_scale, label_grad=None) -> Variant:
    """The exact variant of a softmax op, soft-capped when `softcap` is given: each function
    of the plain op is evaluated on c tanh(z / c), and its gradient taken through the cap."""
    def capped_loss(z, y, dtype, axis, z_loss, softcap):
        capped = soft_cap(z, softcap)
        return with_z_loss(loss(capped, y, axis, dtype), capped, z_loss, axis)

    def grad_of_capped(capped, y, dtype, axis, z_loss):
        return with_z_loss_grad(grad(capped, y, axis, dtype), capped, z_loss, axis)

    def capped_scale(z, y, value, dtype, axis, z_loss, softcap):
        capped = soft_cap(z, softcap)
        scale = loss_scale(capped, y, value, axis) + z_loss_scale(capped, z_loss, axis)
        if softcap is None:
            return scale
        # sum_j |dL/dc_j| |c_j|: the loss moved by rounding each capped logit at its magnitude
        return scale + np.sum(np.abs(grad_of_capped(capped, y, dtype, axis, z_loss)) * _capped_size(capped), axis=axis)

    def capped_grad(z, y, dtype, axis, z_loss, softcap):
        capped = soft_cap(z, softcap)
        scale = grad_scale(capped, y, axis) + z_loss_grad_scale(capped, z_loss, axis)
        return _through_cap(z, capped, grad_of_capped(capped, y, dtype, axis, z_loss), scale, softcap, axis)

    def capped_label_grad(z, y, dtype, axis, z_loss, softcap):
        capped = soft_cap(z, softcap)
        grad_labels, scale = label_grad(capped, axis)
        if softcap is None:
            return grad_labels, scale
        p, shift = _capped_shift(capped, axis)
        return grad_labels, scale + np.where(p > 0, shift, 0.0)

    return Variant(loss=capped_loss, scale=capped_scale, grad=capped_grad,
                   grad_labels=capped_label_grad if label_grad else None)


# Declarations ------------------------------------------------------------------------------

def _with_smoothing_conventions(exact: Variant) -> dict:
    """The mathematics, and Megatron-LM's (and NeMo's) label smoothing: the label keeps 1 - eps,
    each other class eps / (K - 1), where PyTorch puts eps / K on every class (Megatron-LM
    #737, #7464: the two conventions differ by K / (K - 1) in eps)."""
    return {"exact": exact, "megatron_smoothing": replace(exact, smoothing="other_classes")}


SOFTMAX_CROSS_ENTROPY = Op(
    name="softmax_cross_entropy", prediction="logits", integer_labels=False, class_axis=True,
    options={"reduction": "none", "axis": -1, "label_smoothing": 0.0, "weight": None, "z_loss": 0.0,
             "softcap": None},
    variants=_with_smoothing_conventions(_softmax_variant(
        softmax_cross_entropy, softmax_cross_entropy_scale, softmax_cross_entropy_grad,
        softmax_cross_entropy_grad_scale, softmax_cross_entropy_label_grad)),
)

SPARSE_SOFTMAX_CROSS_ENTROPY = Op(
    name="sparse_softmax_cross_entropy", prediction="logits", integer_labels=True, class_axis=True,
    options={"reduction": "none", "axis": -1, "label_smoothing": 0.0, "weight": None, "ignore_index": None,
             "z_loss": 0.0, "softcap": None},
    dense_form="softmax_cross_entropy",
    variants=_with_smoothing_conventions(_softmax_variant(
        sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_scale, sparse_softmax_cross_entropy_grad,
        sparse_softmax_cross_entropy_grad_scale)),
)

DECLARATIONS = (SOFTMAX_CROSS_ENTROPY, SPARSE_SOFTMAX_CROSS_ENTROPY)
