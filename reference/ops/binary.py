"""Two-class cross-entropy: sigmoid_cross_entropy (from logits) and binary_crossentropy (from
probabilities), each with its variants, gradients (prediction and labels) and conditioning.

The two share a module because Keras's variants cross between them: Keras 2.2 recovers a
logit from clipped probabilities and applies the sigmoid form; keras-numpy applies a sigmoid
to logits and then the clipped probability form.

The exact losses and gradients are evaluated in double-double and rounded once (within 1 ULP
of the exact value of their float64 inputs), in forms where nothing cancels: log sigmoid in
the form for z's sign, log(1 - p) as log1p(-p). Conventions follow the limits: 0 * log 0 = 0,
a -inf logit with label 0 contributes nothing, +inf with label 1 costs nothing.
"""
import numpy as np
import numpy.typing as npt

from reference.declaration import Op, Variant
from reference.dtypes import constant
from reference.numerics import doubledouble as dd
from reference.numerics.conditioning import is_hard, log_term, two_terms
from reference.numerics.sigmoid import (dd_log_sigmoid, lone_tiny_term, log_sigmoid, sigmoid, sigmoid_minus_labels,
                                        sigmoid_parts)
from reference.numerics.terms import as_float64, dd_times, dd_xlogy, one_minus, times, xlogy
from reference.ops.keras_clip import KERAS_EPSILON, inside_clip, keras_clip
from reference.option_declaration import Option, taking
from reference.options import LABEL_SMOOTHING, REDUCTION

TORCH_LOG_FLOOR = -100.0  # F.binary_cross_entropy clamps each log term at -100


# sigmoid_cross_entropy: the mathematics ---------------------------------------------------


def sigmoid_cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike,
                          pos_weight: npt.ArrayLike | None = None) -> np.ndarray:
    """-[q y log sigmoid(z) + (1 - y) log sigmoid(-z)], q = pos_weight (1 when absent): a
    number, or one per class (broadcast along the last axis, as PyTorch's and TensorFlow's)."""
    z, y = np.broadcast_arrays(as_float64(logits), as_float64(labels))
    parts = sigmoid_parts(z)
    weight = dd.of(y) if pos_weight is None else dd.DD(*dd.two_prod(np.asarray(pos_weight, np.float64), y))
    loss = dd.add(dd_times(weight, dd_log_sigmoid(z, parts.e)), dd_times(one_minus(y), dd_log_sigmoid(-z, parts.e)))
    # Where one term is left, weight * log1p(e) = weight * e: formed unscaled, rounded once.
    alone = dd.where(z >= 0, weight, dd.of(np.ones_like(z)))  # q y (y = 1), or 1 - y (y = 0)
    lone = dd.value_scaled(dd.mul(alone, parts.unscaled()), parts.exponent)
    return np.where(lone_tiny_term(z, y, parts.e), lone, -loss.hi)


def sigmoid_cross_entropy_grad(logits: npt.ArrayLike, labels: npt.ArrayLike,
                               pos_weight: npt.ArrayLike | None = None) -> np.ndarray:
    """d/dz = sigmoid(z) - y; with a positive weight q, (1 - y) sigmoid(z) - q y sigmoid(-z)."""
    z, y = np.broadcast_arrays(np.asarray(logits, np.float64), np.asarray(labels, np.float64))
    parts = sigmoid_parts(z)
    if pos_weight is None:
        return sigmoid_minus_labels(z, y, parts).hi
    s = parts.s  # sigmoid(-|z|)
    other = dd.sub(dd.of(1.0), s)  # sigmoid(|z|)
    below, above = dd.where(z >= 0, other, s), dd.where(z >= 0, s, other)  # sigmoid(z), sigmoid(-z)
    weighted = dd.DD(*dd.two_prod(np.asarray(pos_weight, np.float64), y))
    grad = dd.sub(dd.mul(one_minus(y), below), dd.mul(weighted, above)).hi
    # Where one term is left (lone_tiny_term), -q sigmoid(-z) or sigmoid(z) =
    # -+ weight 2**k (1 + m) / (1 + e) with exp(-|z|) = e = 2**k (1 + m): rounded once.
    alone = dd.where(z >= 0, dd.neg(weighted), dd.of(np.ones_like(z)))
    lone = dd.value_scaled(dd.div(dd.mul(alone, parts.unscaled()), dd.add(dd.of(1.0), parts.e)), parts.exponent)
    return np.where(lone_tiny_term(z, y, parts.e), lone, grad)


def sigmoid_cross_entropy_scale(logits: npt.ArrayLike, labels: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """The logit's own sensitivity |sigmoid(z) - y| |z|, the z * y product for soft labels."""
    z = np.asarray(logits, np.float64)
    with np.errstate(invalid="ignore"):
        sens = np.abs(sigmoid(z) - labels) * np.abs(z)
        soft = np.where(is_hard(labels), 0.0, np.abs(z * labels))
    return np.abs(loss) + np.nan_to_num(sens + soft, posinf=0.0)


def sigmoid_cross_entropy_grad_scale(logits: npt.ArrayLike, labels: np.ndarray) -> np.ndarray:
    """sigmoid(z) - y: the sigmoid's rounding and the subtraction.

    Autodiff through log_sigmoid or softplus evaluates the sigmoid as exp(z - softplus(z)),
    whose exponent is rounded at the magnitude of z: relative error eps |z| in sigmoid(z),
    the analogue of exp(z_j - lse) in the softmax gradient.
    """
    a = sigmoid(logits)
    z = np.nan_to_num(np.abs(np.asarray(logits, np.float64)), posinf=0.0)
    return a * (1.0 + z) + np.abs(labels)


# sigmoid_cross_entropy: variants ----------------------------------------------------------


def _pos_weight_factor(pos_weight: npt.ArrayLike | None) -> np.ndarray | float:
    """A positive weight q multiplies the magnitudes that are rounded by up to q."""
    return 1.0 if pos_weight is None else np.maximum(1.0, np.asarray(pos_weight, np.float64))


def _sigmoid_exact_loss(z: np.ndarray, y: np.ndarray, dtype: str,
                        pos_weight: npt.ArrayLike | None = None) -> np.ndarray:
    return sigmoid_cross_entropy(z, y, pos_weight)


def _sigmoid_exact_scale(z: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str,
                         pos_weight: npt.ArrayLike | None = None) -> np.ndarray:
    return sigmoid_cross_entropy_scale(z, y, loss) * _pos_weight_factor(pos_weight)


def _sigmoid_exact_grad(z: np.ndarray, y: np.ndarray, dtype: str,
                        pos_weight: npt.ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    return (sigmoid_cross_entropy_grad(z, y, pos_weight),
            sigmoid_cross_entropy_grad_scale(z, y) * _pos_weight_factor(pos_weight))


def _sigmoid_exact_label_grad(z: np.ndarray, y: np.ndarray, dtype: str,
                              pos_weight: npt.ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """-q log sigmoid(z) + log sigmoid(-z) (= -z for q = 1): autodiff through the log-sigmoid
    form rounds both terms, so both magnitudes count."""
    q = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    first, second = -q * log_sigmoid(z), log_sigmoid(-z)
    grad = -np.asarray(z, np.float64) if pos_weight is None else first + second
    return grad, 2.0 * (np.abs(first) + np.abs(second))


def _sigmoid_keras_numpy_loss(z: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    """keras-numpy binary_crossentropy(from_logits=True): sigmoid, then the Keras 3 clip (it
    takes no pos_weight, as Keras's binary_crossentropy takes none)."""
    return _bce_keras3_clip_loss(sigmoid(z), y, dtype)


def _sigmoid_keras_numpy_scale(z: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str) -> np.ndarray:
    """The clipped form's scale, with the sigmoid's own rounding carried into p."""
    a = keras_clip(sigmoid(z), dtype)
    sens = np.nan_to_num(np.abs(z) * (1.0 - sigmoid(np.abs(z))), posinf=0.0)
    return binary_crossentropy_scale(a, y, loss, p_computed=1.0 + sens)


# binary_crossentropy: the mathematics -----------------------------------------------------


def binary_crossentropy(probs: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:
    """-[y log p + (1 - y) log(1 - p)], log(1 - p) as log1p(-p): exact for small p too."""
    p, y = np.broadcast_arrays(as_float64(probs), as_float64(labels))
    loss = dd.add(dd_xlogy(y, p), dd_times(one_minus(y), dd.log1p(dd.of(-p))))
    return -loss.hi


def log1m_sensitivity(probs: npt.ArrayLike) -> np.ndarray:
    """How much log(1 - p) moves, in units of eps, when p moves by eps p: p / (1 - p).

    This is the mathematics' own conditioning, so it is what a tolerance may allow. It is
    about p for small p: an implementation that rounds 1 - p (log(1 - p) instead of log1p(-p))
    loses eps / 2 absolute on a loss of about p, and fails, as an lse rounded at a common
    offset does. Near p = 1 it grows like 1 / (1 - p), as the function does.
    """
    p = np.asarray(probs, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p < 1.0, p / (1.0 - p), 0.0)


def binary_crossentropy_scale(probs: npt.ArrayLike, labels: np.ndarray, loss: np.ndarray,
                              p_computed: np.ndarray | float = 0.0) -> np.ndarray:
    """Log terms of p and of 1 - p, each with the sensitivity of its log to p.

    When p itself was computed (a sigmoid, a renormalisation: a variant's semantics) with
    relative error k eps, 1 - p inherits an absolute error k eps p, k eps p / (1 - p) relative:
    the cancellation every "sigmoid, then log(1 - p)" implementation pays near p = 1.
    """
    p = np.asarray(probs, np.float64)
    q_computed = (1.0 + p_computed) * log1m_sensitivity(p)
    return np.abs(loss) + log_term(labels, p, p_computed) + log_term(1.0 - labels, 1.0 - p, q_computed)


def _bce_grad_terms(p: np.ndarray, labels: np.ndarray, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """-y / (p + shift) and (1 - y) / (1 - p + shift), the two terms of d BCE / dp."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -times(labels, 1.0 / (p + shift)), times(1.0 - labels, 1.0 / (1.0 - p + shift))


def _bce_label_grad_terms(p: np.ndarray, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """d BCE / dy = -log(p + shift) + log(1 - p + shift): the loss is linear in its labels."""
    with np.errstate(divide="ignore"):
        return two_terms(-np.log(p + shift), np.log(1.0 - p + shift))


def _bce_exact_loss(p: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    return binary_crossentropy(p, y)


def _bce_exact_scale(p: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str) -> np.ndarray:
    return binary_crossentropy_scale(p, y, loss, 0.0)


def _bce_exact_grad(p: np.ndarray, y: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    return two_terms(*_bce_grad_terms(p, y))


def _bce_exact_label_grad(p: np.ndarray, y: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore"):
        return two_terms(-np.log(p), np.log1p(-p))


# binary_crossentropy: Keras 3 and Keras 2.2 -----------------------------------------------


def _bce_keras3_clip_loss(probs: np.ndarray, labels: np.ndarray, dtype: str) -> np.ndarray:
    """Keras 3 binary_crossentropy: clip to [eps, 1 - eps], then the exact formula."""
    return binary_crossentropy(keras_clip(probs, dtype), labels)


def _bce_keras3_clip_scale(p: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str) -> np.ndarray:
    return binary_crossentropy_scale(keras_clip(p, dtype), y, loss, 0.0)


def _bce_keras_clip_grad(probs: np.ndarray, labels: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Keras 3 and Keras 2.2 (whose logit path has the same derivative inside the clip)."""
    return two_terms(*_bce_grad_terms(keras_clip(probs, dtype), labels), inside_clip(probs, dtype))


def _bce_keras_clip_label_grad(p: np.ndarray, y: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Keras 3 and Keras 2.2: d/dy of the loss of the clipped p (the logit path's -z' is the same)."""
    return _bce_label_grad_terms(keras_clip(p, dtype))


def _bce_keras2_logit_loss(probs: np.ndarray, labels: np.ndarray, dtype: str) -> np.ndarray:
    """Keras 2.2 binary_crossentropy: clip, recover a logit log(p / (1 - p)), then sigmoid CE.

    In exact arithmetic this equals the Keras 3 clip; the article's 1.1920933e-07 is this path
    evaluated in float32, where the logit 15.942385 is rounded before the sigmoid.
    """
    p = keras_clip(probs, dtype)
    return sigmoid_cross_entropy(np.log(p / (1.0 - p)), labels)


def _bce_keras2_logit_scale(p: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str) -> np.ndarray:
    """The recovered logit is stored in dtype: its rounding (eps |z'|) moves the sigmoid CE."""
    pc = keras_clip(p, dtype)
    z = np.log(pc / (1.0 - pc))
    return sigmoid_cross_entropy_scale(z, y, loss) + np.abs(sigmoid(z) - y) * (np.abs(z) + 2.0)


# binary_crossentropy: tf-keras and PyTorch ------------------------------------------------


def _bce_tf_keras_loss(probs: np.ndarray, labels: np.ndarray, dtype: str) -> np.ndarray:
    """tf-keras (Keras 2) binary_crossentropy: clip, then epsilon added inside each log."""
    epsilon = constant(KERAS_EPSILON, dtype)
    p = keras_clip(probs, dtype)
    negatives = 1.0 - labels
    with np.errstate(invalid="ignore"):  # log(1 - p + eps) as log1p(eps - p): 1 - p never rounded
        log_q = np.where(negatives == 0, 0.0, negatives * np.log1p(epsilon - p))
    return -(xlogy(labels, p + epsilon) + log_q)


def _bce_tf_keras_scale(p: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str) -> np.ndarray:
    return binary_crossentropy_scale(keras_clip(p, dtype), y, loss, 1.0)


def _bce_tf_keras_grad(probs: np.ndarray, labels: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    shift = constant(KERAS_EPSILON, dtype)
    return two_terms(*_bce_grad_terms(keras_clip(probs, dtype), labels, shift), inside_clip(probs, dtype))


def _bce_tf_keras_label_grad(p: np.ndarray, y: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    return _bce_label_grad_terms(keras_clip(p, dtype), constant(KERAS_EPSILON, dtype))


def _bce_torch_loss(probs: np.ndarray, labels: np.ndarray, dtype: str) -> np.ndarray:
    """F.binary_cross_entropy: each log term clamped at -100 before weighting by the label."""
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(probs), TORCH_LOG_FLOOR)
        log_q = np.maximum(np.log1p(-probs), TORCH_LOG_FLOOR)  # log(1 - p) with 1 - p never rounded
    return -(labels * log_p + (1.0 - labels) * log_q)


def _bce_torch_scale(p: np.ndarray, y: np.ndarray, loss: np.ndarray, dtype: str) -> np.ndarray:
    """As the exact form, with each log term's magnitude capped where torch clamps it at -100."""
    with np.errstate(divide="ignore"):
        log_p = np.minimum(np.abs(np.log(p)), -TORCH_LOG_FLOOR)
        log_q = np.minimum(np.abs(np.log1p(-p)), -TORCH_LOG_FLOOR)
    return np.abs(loss) + np.abs(times(y, log_p)) + np.abs(times(1.0 - y, log_q + log1m_sensitivity(p)))


def _bce_torch_grad(probs: np.ndarray, labels: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's explicit backward: (p - y) / max(p (1 - p), 1e-12)."""
    denominator = np.maximum(probs * (1.0 - probs), 1e-12)
    return (probs - labels) / denominator, 2.0 * (np.abs(probs) + np.abs(labels)) / denominator


def _bce_torch_label_grad(p: np.ndarray, y: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:

    with np.errstate(divide="ignore"):
        return two_terms(-np.maximum(np.log(p), TORCH_LOG_FLOOR), np.maximum(np.log1p(-p), TORCH_LOG_FLOOR))


# Declarations ------------------------------------------------------------------------------

POS_WEIGHT = Option(
    name="pos_weight", kind="number_or_per_class", minimum=0.0, exclusive_minimum=True, default=None,
    description="q in -(q y log sigmoid(z) + (1 - y) log sigmoid(-z)): a number, or one per class (the last axis)")

SIGMOID_CROSS_ENTROPY = Op(
    name="sigmoid_cross_entropy", prediction="logits", integer_labels=False, class_axis=False,
    options=taking(REDUCTION, LABEL_SMOOTHING, POS_WEIGHT),
    unit_interval=("labels",),
    variants={
        "exact": Variant(loss=_sigmoid_exact_loss, scale=_sigmoid_exact_scale, grad=_sigmoid_exact_grad,
                         grad_labels=_sigmoid_exact_label_grad),
        "keras_numpy": Variant(loss=_sigmoid_keras_numpy_loss, scale=_sigmoid_keras_numpy_scale),
    },
)

BINARY_CROSSENTROPY = Op(
    name="binary_crossentropy", prediction="probs", integer_labels=False, class_axis=False,
    options=taking(REDUCTION, LABEL_SMOOTHING),
    unit_interval=("probs", "labels"),
    variants={
        "exact": Variant(loss=_bce_exact_loss, scale=_bce_exact_scale, grad=_bce_exact_grad,
                         grad_labels=_bce_exact_label_grad),
        "keras3_clip": Variant(loss=_bce_keras3_clip_loss, scale=_bce_keras3_clip_scale, grad=_bce_keras_clip_grad,
                               grad_labels=_bce_keras_clip_label_grad),
        "keras2_logit": Variant(loss=_bce_keras2_logit_loss, scale=_bce_keras2_logit_scale,
                                grad=_bce_keras_clip_grad, grad_labels=_bce_keras_clip_label_grad),
        "tf_keras_eps_log": Variant(loss=_bce_tf_keras_loss, scale=_bce_tf_keras_scale, grad=_bce_tf_keras_grad,
                                    grad_labels=_bce_tf_keras_label_grad),
        "torch_clamp_log": Variant(loss=_bce_torch_loss, scale=_bce_torch_scale, grad=_bce_torch_grad,
                                   grad_labels=_bce_torch_label_grad),
    },
)

DECLARATIONS = (SIGMOID_CROSS_ENTROPY, BINARY_CROSSENTROPY)
