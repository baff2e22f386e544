"""Cross-entropy from probabilities: categorical_crossentropy (soft labels) and
sparse_categorical_crossentropy (integer labels), with Keras's variants, gradients with
respect to the probabilities (and the soft labels) and conditioning.

The probabilities are taken as given (0 * log 0 = 0). Keras renormalises them by their sum
and clips them to [eps, 1 - eps]; keras-tensorflow and tf-keras clip first and renormalise in
the sparse softmax kernel. A clip passes the gradient where lo <= p <= hi and stops it
outside, as clip_by_value does.
"""
import numpy as np
import numpy.typing as npt

from reference.declaration import Op, Variant
from reference.option_declaration import taking
from reference.numerics import doubledouble as dd
from reference.numerics.conditioning import log_term, summation, two_terms
from reference.numerics.softmax import onehot, take_class
from reference.numerics.terms import as_float64, dd_xlogy, times
from reference.ops.keras_clip import inside_clip, keras_clip, keras_normalize
from reference.options import AXIS, IGNORE_INDEX, LABEL_SMOOTHING, REDUCTION


# The mathematics --------------------------------------------------------------------------


def categorical_crossentropy(probs: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """-sum_c y_c log p_c, probabilities taken as given."""
    y, p = np.broadcast_arrays(as_float64(labels), as_float64(probs))
    return -dd.sum(dd_xlogy(y, p), axis).hi


def sparse_categorical_crossentropy(probs: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """-log p[label]."""
    return -dd.log(take_class(as_float64(probs), labels, axis)).hi


def categorical_crossentropy_scale(probs: np.ndarray, labels: np.ndarray, loss: np.ndarray, axis: int = -1,
                                   p_computed: np.ndarray | float = 0.0) -> np.ndarray:
    terms = log_term(labels, probs, p_computed)
    return np.abs(loss) + np.sum(terms, axis=axis) + summation(terms, axis)


def sparse_categorical_crossentropy_scale(probs: npt.ArrayLike, labels: npt.ArrayLike, loss: np.ndarray,
                                          axis: int = -1, p_computed: np.ndarray | float = 0.0) -> np.ndarray:
    p = take_class(np.asarray(probs, np.float64), labels, axis)
    return np.abs(loss) + log_term(1.0, p, p_computed)


def _cce_grad(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d/dp = -y / p, and its scale."""
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = -times(labels, 1.0 / probs)
    return grad, 2.0 * np.abs(grad)


def _cce_label_grad(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d/dy = -log p: the loss is linear in its labels."""
    with np.errstate(divide="ignore"):
        log_p = np.log(probs)
    return -log_p, 2.0 * np.abs(log_p) + 1.0


def _normalized_grad(probs: np.ndarray, g: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """d/dp_j of a loss of q = p / sum(p), given g = dL/dq: (g_j - sum_c g_c q_c) / sum(p)."""
    total = np.sum(probs, axis=axis, keepdims=True)
    q = probs / total
    back = np.sum(g * q, axis=axis, keepdims=True)
    return (g - back) / total, 2.0 * (np.abs(g) + np.sum(np.abs(g * q), axis=axis, keepdims=True)) / total


def _normalize_clip(p: np.ndarray, dtype: str, axis: int) -> np.ndarray:
    return keras_clip(keras_normalize(p, axis), dtype)


def _normalize_clip_grad(probs: np.ndarray, labels: np.ndarray, dtype: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Keras: p / sum(p), clip, then -sum y log q: the clip's mask on q, then the division's."""
    q = keras_normalize(probs, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(inside_clip(q, dtype), -times(labels, 1.0 / keras_clip(q, dtype)), 0.0)
    return _normalized_grad(probs, g, axis)


# categorical_crossentropy -----------------------------------------------------------------

CATEGORICAL_CROSSENTROPY = Op(
    name="categorical_crossentropy", prediction="probs", integer_labels=False, class_axis=True,
    options=taking(REDUCTION, AXIS, LABEL_SMOOTHING),
    variants={
        "exact": Variant(
            loss=lambda p, y, dtype, axis: categorical_crossentropy(p, y, axis),
            scale=lambda p, y, loss, dtype, axis: categorical_crossentropy_scale(p, y, loss, axis),
            grad=lambda p, y, dtype, axis: _cce_grad(p, y),
            grad_labels=lambda p, y, dtype, axis: _cce_label_grad(p)),
        # Keras: p / sum(p), clip to [eps, 1 - eps], -sum y log p.
        "keras_normalize_clip": Variant(
            loss=lambda p, y, dtype, axis: categorical_crossentropy(_normalize_clip(p, dtype, axis), y, axis),
            scale=lambda p, y, loss, dtype, axis: categorical_crossentropy_scale(
                _normalize_clip(p, dtype, axis), y, loss, axis, 1.0),
            grad=_normalize_clip_grad,
            grad_labels=lambda p, y, dtype, axis: _cce_label_grad(_normalize_clip(p, dtype, axis))),
    },
)


# sparse_categorical_crossentropy ----------------------------------------------------------


def _scce_clip_normalize_loss(probs: np.ndarray, labels: np.ndarray, dtype: str, axis: int) -> np.ndarray:
    """keras-tensorflow and tf-keras: clip, log, then the sparse softmax kernel, which
    renormalises the clipped probabilities: -log(c[label] / sum(c))."""
    return sparse_categorical_crossentropy(keras_normalize(keras_clip(probs, dtype), axis), labels, axis)


def _scce_clip_normalize_grad(probs: np.ndarray, labels: np.ndarray, dtype: str,
                              axis: int) -> tuple[np.ndarray, np.ndarray]:

    """-log(c_y / sum(c)) with c = clip(p): (1 / sum(c) - [j == y] / c_y) where p is inside."""
    clipped = keras_clip(probs, dtype)
    total = np.sum(clipped, axis=axis, keepdims=True)
    first, second = -onehot(labels, probs, axis) / clipped, np.broadcast_to(1.0 / total, clipped.shape)
    return two_terms(first, second, inside_clip(probs, dtype))


SPARSE_CATEGORICAL_CROSSENTROPY = Op(
    name="sparse_categorical_crossentropy", prediction="probs", integer_labels=True, class_axis=True,
    options=taking(REDUCTION, AXIS, IGNORE_INDEX),
    variants={
        "exact": Variant(
            loss=lambda p, y, dtype, axis: sparse_categorical_crossentropy(p, y, axis),
            scale=lambda p, y, loss, dtype, axis: sparse_categorical_crossentropy_scale(p, y, loss, axis),
            grad=lambda p, y, dtype, axis: _cce_grad(p, onehot(y, p, axis))),
        # Keras: p / sum(p), clip to [eps, 1 - eps], -log p[label].
        "keras_normalize_clip": Variant(
            loss=lambda p, y, dtype, axis: sparse_categorical_crossentropy(_normalize_clip(p, dtype, axis), y, axis),
            scale=lambda p, y, loss, dtype, axis: sparse_categorical_crossentropy_scale(
                _normalize_clip(p, dtype, axis), y, loss, axis, 1.0),
            grad=lambda p, y, dtype, axis: _normalize_clip_grad(p, onehot(y, p, axis), dtype, axis)),
        # keras-tensorflow and tf-keras: clip to [eps, 1 - eps], then -log(c[label] / sum(c)).
        "keras_clip_normalize": Variant(
            loss=_scce_clip_normalize_loss,
            scale=lambda p, y, loss, dtype, axis: sparse_categorical_crossentropy_scale(
                keras_normalize(keras_clip(p, dtype), axis), y, loss, axis, 1.0),
            grad=_scce_clip_normalize_grad),
    },
)

DECLARATIONS = (CATEGORICAL_CROSSENTROPY, SPARSE_CATEGORICAL_CROSSENTROPY)
