"""Models of what a framework computes where it departs from the mathematics:
- its formula with each intermediate rounded to the dtype under test (correctly rounded
  operations; the frameworks' own exp and log are within an ulp of that);
- the whole computation in float32 under a float64 dtype (FLOAT32);
- a convention, in exact arithmetic (CONVENTIONS: logsumexp(z) - sum(y z), a soft cap that
  unmasks -inf logits);
- against a pinned number, the reference variant the framework declares (FRAMEWORK_VARIANT).

A manifest entry names one as `when: {model: name}`; the entry then covers a check only where
the model's result is outside the check's tolerance (judged_on says which checks each kind
speaks to). That is how a cancellation is recognised in anyone's case, and how a case whose
inputs do not trigger it is judged like any other.

A model's functions take the options they model and no other: the registry does not evaluate
one with another option given (NotModelled, as the model's own refusals), so a model of the
plain formula says nothing of a case with a soft cap or a positive weight.
"""
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from reference.dtypes import round_to
from reference.declaration import NotDescribed, Variant
from reference.numerics.sigmoid import log_sigmoid, sigmoid
from reference.numerics.softmax import log_softmax, logsumexp, take_class
from reference.registry import OPS


# The model does not describe these options or labels: the entry covers nothing here. The
# registry's own refusal of an option a model does not take, under the name models use.
NotModelled = NotDescribed

# One rounding to the dtype under test, applied after each operation of a modelled formula.
Rounder = Callable[[npt.ArrayLike], np.ndarray]


def _exact(op: str) -> Variant:
    return OPS[op].variants["exact"]


def _rounder(dtype: str) -> Rounder:
    """One rounding to the dtype, applied after each operation of a modelled formula."""
    return lambda values: round_to(values, dtype)


def _no_scale(*args: object, **options: object) -> float:
    """A model's loss is compared with the reference's scale; it has none of its own."""
    return 0.0


def _unscaled(grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A modelled gradient, with the zero scale that reductions and directions carry along."""
    return grad, np.zeros_like(grad)


def _label_weight(pos_weight: npt.ArrayLike, y: np.ndarray, r: Rounder) -> np.ndarray:
    """l = 1 + (q - 1) y, the weight a positive weight q puts on an example's log terms."""
    return r(1.0 + r(r(np.asarray(pos_weight, np.float64) - 1.0) * y))


def _log_one_plus_exp(x: np.ndarray, r: Rounder) -> np.ndarray:
    """log(1 + exp(x)) with log rather than log1p, rounded per operation."""
    with np.errstate(over="ignore"):
        return r(np.log(r(1.0 + r(np.exp(x)))))


def _log_of_one_plus_exp(z: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    """max(z, 0) - z y + log(1 + exp(-|z|)), with log rather than log1p (Paddle, tinygrad)."""
    r = _rounder(dtype)
    return r(r(r(np.maximum(z, 0)) - r(z * y)) + _log_one_plus_exp(-np.abs(z), r))


def _one_minus_y_z_minus_log_sigmoid(z: np.ndarray, y: np.ndarray, dtype: str,
                                     pos_weight: npt.ArrayLike | None = None) -> np.ndarray:
    """(1 - y) z - log_sigmoid(z), or with a positive weight q and l = 1 + (q - 1) y,
    (1 - y) z + l (log1p(exp(-|z|)) + max(-z, 0)) (PyTorch's binary_cross_entropy_with_logits)."""
    r = _rounder(dtype)
    first = r(r(1.0 - y) * z)
    if pos_weight is None:
        return r(first - r(log_sigmoid(z)))
    return r(first + r(_label_weight(pos_weight, y, r) * r(-log_sigmoid(z))))


def _logaddexp_minus_zy(z: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    """logaddexp(0, z) - z y (MLX)."""
    r = _rounder(dtype)
    return r(r(np.logaddexp(0.0, z)) - r(z * y))


def _logaddexp_minus_zy_grad(z: np.ndarray, y: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Its derivative as MLX's autodiff forms it: logaddexp's derivative in its smaller argument
    is 1 minus the one in its larger, so below zero it is 1 - sigmoid(-z), which cancels
    (measured: 6.1392784e-06 for sigmoid(-12) = 6.1441746e-06 in float32); then minus y."""
    r = _rounder(dtype)
    slope = np.where(z < 0, r(1.0 - r(sigmoid(-z))), r(sigmoid(z)))
    return _unscaled(r(slope - y))


def _dense(y: npt.ArrayLike) -> None:
    if np.asarray(y).dtype.kind in "iu":
        raise NotModelled("integer labels")


def _shifted(z: np.ndarray, axis: int) -> np.ndarray:
    """The logits less their row's largest finite one (MLX's shift)."""
    top = np.max(np.where(np.isfinite(z), z, -np.inf), axis=axis, keepdims=True)
    return z - np.where(np.isfinite(top), top, 0.0)


def _lse_minus_labels_dot_logits(z: np.ndarray, y: np.ndarray, dtype: str, axis: int) -> np.ndarray:
    """logsumexp(z) - sum(y z), both of the logits shifted by their row's largest:
    -sum(y log_softmax(z)) only where each label row sums to 1 (MLX; measured 1.3132616 for
    the article's labels [1, 2] at logits [1, 2]). A label weight of 0 adds nothing, even at a
    -inf logit."""
    _dense(y)
    shifted = _shifted(z, axis)
    return logsumexp(shifted, axis) - np.sum(np.where(y == 0, 0.0, y * shifted), axis=axis)


def _softmax_minus_labels(z: np.ndarray, y: np.ndarray, dtype: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """softmax(z) - y: the gradient only where each label row sums to 1 (TensorFlow's fused
    kernel, Paddle's soft-label backward, MLX)."""
    _dense(y)
    return _unscaled(np.exp(log_softmax(z, axis)) - y)


def _minus_logits(z: np.ndarray, y: np.ndarray, dtype: str, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Its derivative in the labels: -(z - max z), without the logsumexp a normalised row cancels."""
    _dense(y)
    return _unscaled(-_shifted(z, axis))


def _log_sigmoid_terms_without_log1p(z: np.ndarray, y: np.ndarray, dtype: str,
                                     pos_weight: npt.ArrayLike | None = None) -> np.ndarray:
    """-(q y log_sigmoid(z) + (1 - y) log_sigmoid(-z)), log_sigmoid(x) = -log(1 + exp(-x)) with
    log rather than log1p (tinygrad)."""
    r = _rounder(dtype)
    q = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    return r(-r(r(r(q * y) * -_log_one_plus_exp(-z, r)) + r(r(1.0 - y) * -_log_one_plus_exp(z, r))))


def _weighted_grad_as_written(z: np.ndarray, y: np.ndarray, dtype: str,
                              pos_weight: npt.ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The derivative of (1 - y) z + l (log1p(exp(-|z|)) + max(-z, 0)) as autodiff forms it:
    below zero (1 - y) + l (sigmoid(z) - 1), two terms near 1 that cancel (TensorFlow, Paddle)."""
    if pos_weight is None:
        raise NotModelled("no pos_weight")
    r = _rounder(dtype)
    weight = _label_weight(pos_weight, y, r)
    below = r(r(1.0 - y) + r(weight * r(r(sigmoid(z)) - 1.0)))
    above = r(r(1.0 - y) - r(weight * r(sigmoid(-z))))
    return _unscaled(np.where(z < 0, below, above))


def _clip(p: np.ndarray, dtype: str) -> np.ndarray:
    epsilon = float(round_to(1e-7, dtype))
    return np.clip(p, epsilon, float(round_to(1.0 - epsilon, dtype)))


def _clip_then_log_of_one_minus_p(p: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    """Keras 3: clip p to [eps, 1 - eps], then -y log p - (1 - y) log(1 - p), 1 - p rounded."""
    r = _rounder(dtype)
    p = _clip(p, dtype)
    return r(r(-r(y * r(np.log(p)))) - r(r(1.0 - y) * r(np.log(r(1.0 - p)))))


def _sigmoid_clip_then_log_of_one_minus_p(z: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    """keras-numpy from logits: the sigmoid first, then as _clip_then_log_of_one_minus_p."""
    return _clip_then_log_of_one_minus_p(round_to(sigmoid(z), dtype), y, dtype)


def _lse_rounded_before_subtracting(z: np.ndarray, y: np.ndarray, dtype: str, axis: int) -> np.ndarray:
    """logsumexp(z), rounded, minus z[label] (optax's integer-label cross-entropy)."""
    if np.asarray(y).dtype.kind not in "iu":
        raise NotModelled("dense labels")
    r = _rounder(dtype)
    return r(r(logsumexp(z, axis)) - take_class(z, y, axis))


def _cap_unmasking(op: str) -> Callable[..., np.ndarray]:
    """c tanh(z / c) taken literally, so a -inf logit (a padded class) becomes -c and gets a
    probability, where the reference keeps the mask; in exact arithmetic."""
    exact = _exact(op)

    def loss(z: np.ndarray, y: np.ndarray, dtype: str, axis: int, z_loss: float = 0.0,
             softcap: float | None = None) -> np.ndarray:
        if softcap is None:
            raise NotModelled("no softcap")
        return exact.loss(softcap * np.tanh(z / softcap), y, dtype, axis, z_loss, None)
    return loss


def _labels_in_dtype(part: str) -> Callable[..., Any]:
    """The exact loss (or gradient) at integer labels rounded to the dtype under test, as a loss
    that converts its labels to its own dtype computes it: bfloat16 holds the integers up to
    256 only (class 128256 is read as 128000)."""
    exact = getattr(_exact("sparse_softmax_cross_entropy"), part)

    def at_rounded_labels(z: np.ndarray, y: np.ndarray, dtype: str, axis: int, z_loss: float = 0.0,
                          softcap: float | None = None) -> Any:  # the loss, or (gradient, scale)
        if np.asarray(y).dtype.kind not in "iu":
            raise NotModelled("dense labels")
        held = round_to(np.asarray(y, np.float64), dtype)
        if not np.all(np.isfinite(held)) or np.any(held >= np.shape(z)[axis]):
            raise NotModelled("a label rounded past the classes")
        return exact(z, held.astype(np.int64), dtype, axis, z_loss, softcap)
    return at_rounded_labels


def _model(loss: Callable[..., Any], grad: Callable[..., Any] | None = None,
           grad_labels: Callable[..., Any] | None = None) -> Variant:
    """A model as a reference variant, so the option pipeline, reductions, cotangents and
    directions apply to it as to the reference; its values only (no scale)."""
    return Variant(loss=loss, scale=_no_scale, grad=grad, grad_labels=grad_labels)


# (op, model name) -> the model: loss (and gradient where modelled)
FORMULAS: dict[tuple[str, str], Variant] = {
    ("sigmoid_cross_entropy", "log_of_one_plus_exp"): _model(_log_of_one_plus_exp),
    ("sigmoid_cross_entropy", "one_minus_y_z_minus_log_sigmoid"): _model(_one_minus_y_z_minus_log_sigmoid),
    ("sigmoid_cross_entropy", "logaddexp_minus_zy"): _model(_logaddexp_minus_zy, _logaddexp_minus_zy_grad),
    ("sigmoid_cross_entropy", "weighted_gradient_as_written"):
        _model(_exact("sigmoid_cross_entropy").loss, _weighted_grad_as_written),
    ("sigmoid_cross_entropy", "log_sigmoid_terms_without_log1p"): _model(_log_sigmoid_terms_without_log1p),
    ("sigmoid_cross_entropy", "log_of_one_minus_p"): _model(_sigmoid_clip_then_log_of_one_minus_p),
    ("binary_crossentropy", "log_of_one_minus_p"): _model(_clip_then_log_of_one_minus_p),
    ("softmax_cross_entropy", "lse_minus_labels_dot_logits"):
        _model(_lse_minus_labels_dot_logits, _softmax_minus_labels, _minus_logits),
    ("softmax_cross_entropy", "soft_cap_unmasking"): _model(_cap_unmasking("softmax_cross_entropy")),
    ("sparse_softmax_cross_entropy", "soft_cap_unmasking"): _model(_cap_unmasking("sparse_softmax_cross_entropy")),
    ("sparse_softmax_cross_entropy", "lse_rounded_before_subtracting"): _model(_lse_rounded_before_subtracting),
    ("sparse_softmax_cross_entropy", "labels_rounded_to_dtype"):
        _model(_labels_in_dtype("loss"), _labels_in_dtype("grad")),
}
# The whole computation in float32: inputs rounded to float32, the result rounded to float32.
FLOAT32 = "float32"
# A pinned number against the reference variant the framework declares: where another
# convention (Keras' clip, its normalisation) printed it, the framework's own gives another.
FRAMEWORK_VARIANT = "framework_variant"
NAMES = (FLOAT32, FRAMEWORK_VARIANT, *sorted({name for _, name in FORMULAS}))
# Models of a convention rather than of rounding: judged against pinned numbers too.
CONVENTIONS = ("lse_minus_labels_dot_logits", "soft_cap_unmasking")


def judged_on(model: str, pinned: bool) -> bool:
    """Whether a model speaks to this kind of check: one of rounding (an ulp of its formula)
    to reference checks only, not to a source's last printed digit; the framework's own
    variant to pinned numbers only; a convention to both."""
    if model == FRAMEWORK_VARIANT:
        return pinned
    return model in CONVENTIONS or not pinned


def formula(op: str, name: str) -> Variant | None:
    return FORMULAS.get((op, name))
