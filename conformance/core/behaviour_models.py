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
"""
from typing import Callable

import numpy as np

from reference.dtypes import round_to
from reference.declaration import Variant
from reference.numerics.sigmoid import log_sigmoid, sigmoid
from reference.numerics.softmax import logsumexp, take_class
from reference.registry import OPS


class NotModelled(Exception):
    """The model does not describe these options or labels: the entry covers nothing here."""


def _exact(op: str) -> Variant:
    return OPS[op].variants["exact"]


def _plain(pos_weight):
    if pos_weight is not None:
        raise NotModelled("pos_weight")


def _log_of_one_plus_exp(z, y, dtype, pos_weight=None):
    """max(z, 0) - z y + log(1 + exp(-|z|)), with log rather than log1p (Paddle, tinygrad)."""
    _plain(pos_weight)
    r = lambda v: round_to(v, dtype)  # noqa: E731 - one rounding per operation
    return r(r(r(np.maximum(z, 0)) - r(z * y)) + r(np.log(r(1.0 + r(np.exp(-np.abs(z)))))))


def _one_minus_y_z_minus_log_sigmoid(z, y, dtype, pos_weight=None):
    """(1 - y) z - log_sigmoid(z), or with a positive weight q and l = 1 + (q - 1) y,
    (1 - y) z + l (log1p(exp(-|z|)) + max(-z, 0)) (PyTorch's binary_cross_entropy_with_logits)."""
    r = lambda v: round_to(v, dtype)  # noqa: E731
    first = r(r(1.0 - y) * z)
    if pos_weight is None:
        return r(first - r(log_sigmoid(z)))
    weight = r(1.0 + r(r(np.asarray(pos_weight, np.float64) - 1.0) * y))
    return r(first + r(weight * r(-log_sigmoid(z))))


def _logaddexp_minus_zy(z, y, dtype, pos_weight=None):
    """logaddexp(0, z) - z y (MLX)."""
    _plain(pos_weight)
    r = lambda v: round_to(v, dtype)  # noqa: E731
    return r(r(np.logaddexp(0.0, z)) - r(z * y))


def _logaddexp_minus_zy_grad(z, y, dtype, pos_weight=None):
    """Its derivative as MLX's autodiff forms it: logaddexp's derivative in its smaller argument
    is 1 minus the one in its larger, so below zero it is 1 - sigmoid(-z), which cancels
    (measured: 6.1392784e-06 for sigmoid(-12) = 6.1441746e-06 in float32); then minus y."""
    _plain(pos_weight)
    r = lambda v: round_to(v, dtype)  # noqa: E731
    slope = np.where(z < 0, r(1.0 - r(sigmoid(-z))), r(sigmoid(z)))
    return r(slope - y), _exact("sigmoid_cross_entropy").grad(z, y, dtype, pos_weight)[1]


def _dense(y, z_loss, softcap):
    if np.asarray(y).dtype.kind in "iu" or z_loss or softcap is not None:
        raise NotModelled("integer labels, z_loss or softcap")


def _lse_minus_labels_dot_logits(z, y, dtype, axis, z_loss=0.0, softcap=None):
    """logsumexp(z) - sum(y z), both of the logits shifted by their row's largest:
    -sum(y log_softmax(z)) only where each label row sums to 1 (MLX; measured 1.3132616 for
    the article's labels [1, 2] at logits [1, 2]). A label weight of 0 adds nothing, even at a
    -inf logit."""
    _dense(y, z_loss, softcap)
    top = np.max(np.where(np.isfinite(z), z, -np.inf), axis=axis, keepdims=True)
    shifted = z - np.where(np.isfinite(top), top, 0.0)
    return logsumexp(shifted, axis) - np.sum(np.where(y == 0, 0.0, y * shifted), axis=axis)


def _softmax_minus_labels(z, y, dtype, axis, z_loss=0.0, softcap=None):
    """softmax(z) - y: the gradient only where each label row sums to 1 (TensorFlow's fused
    kernel, Paddle's soft-label backward, MLX)."""
    _dense(y, z_loss, softcap)
    p = np.exp(z - np.expand_dims(logsumexp(z, axis), axis))
    return p - y, _exact("softmax_cross_entropy").grad(z, y, dtype, axis, z_loss, softcap)[1]


def _minus_logits(z, y, dtype, axis, z_loss=0.0, softcap=None):
    """Its derivative in the labels: -(z - max z), without the logsumexp a normalised row cancels."""
    _dense(y, z_loss, softcap)
    top = np.max(np.where(np.isfinite(z), z, -np.inf), axis=axis, keepdims=True)
    return -(z - np.where(np.isfinite(top), top, 0.0)), _exact("softmax_cross_entropy").grad_labels(
        z, y, dtype, axis, z_loss, softcap)[1]


def _log_sigmoid_terms_without_log1p(z, y, dtype, pos_weight=None):
    """-(q y log_sigmoid(z) + (1 - y) log_sigmoid(-z)), log_sigmoid(x) = -log(1 + exp(-x)) with
    log rather than log1p (tinygrad)."""
    r = lambda v: round_to(v, dtype)  # noqa: E731
    q = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    log_sigmoid_r = lambda x: -r(np.log(r(1.0 + r(np.exp(-x)))))  # noqa: E731
    with np.errstate(over="ignore"):
        return r(-r(r(r(q * y) * log_sigmoid_r(z)) + r(r(1.0 - y) * log_sigmoid_r(-z))))


def _weighted_grad_as_written(z, y, dtype, pos_weight=None):
    """The derivative of (1 - y) z + l (log1p(exp(-|z|)) + max(-z, 0)) as autodiff forms it:
    below zero (1 - y) + l (sigmoid(z) - 1), two terms near 1 that cancel (TensorFlow, Paddle)."""
    if pos_weight is None:
        raise NotModelled("no pos_weight")
    r = lambda v: round_to(v, dtype)  # noqa: E731
    weight = r(1.0 + r(r(np.asarray(pos_weight, np.float64) - 1.0) * y))
    below = r(r(1.0 - y) + r(weight * r(r(sigmoid(z)) - 1.0)))
    above = r(r(1.0 - y) - r(weight * r(sigmoid(-z))))
    return np.where(z < 0, below, above), _exact("sigmoid_cross_entropy").grad(z, y, dtype, pos_weight)[1]


def _clip(p, dtype):
    epsilon = float(round_to(1e-7, dtype))
    return np.clip(p, epsilon, float(round_to(1.0 - epsilon, dtype)))


def _clip_then_log_of_one_minus_p(p, y, dtype):
    """Keras 3: clip p to [eps, 1 - eps], then -y log p - (1 - y) log(1 - p), 1 - p rounded."""
    r = lambda v: round_to(v, dtype)  # noqa: E731
    p = _clip(p, dtype)
    return r(r(-r(y * r(np.log(p)))) - r(r(1.0 - y) * r(np.log(r(1.0 - p)))))


def _sigmoid_clip_then_log_of_one_minus_p(z, y, dtype, pos_weight=None):
    """keras-numpy from logits: the sigmoid first, then as _clip_then_log_of_one_minus_p."""
    _plain(pos_weight)
    return _clip_then_log_of_one_minus_p(round_to(sigmoid(z), dtype), y, dtype)


def _lse_rounded_before_subtracting(z, y, dtype, axis, z_loss=0.0, softcap=None):
    """logsumexp(z), rounded, minus z[label] (optax's integer-label cross-entropy)."""
    if np.asarray(y).dtype.kind not in "iu" or z_loss or softcap is not None:
        raise NotModelled("dense labels, z_loss or softcap")
    r = lambda v: round_to(v, dtype)  # noqa: E731
    return r(r(logsumexp(z, axis)) - take_class(z, y, axis))


def _cap_unmasking(op: str) -> Variant:
    """c tanh(z / c) taken literally, so a -inf logit (a padded class) becomes -c and gets a
    probability, where the reference keeps the mask; in exact arithmetic."""
    exact = _exact(op)

    def loss(z, y, dtype, axis, z_loss=0.0, softcap=None):
        if softcap is None:
            raise NotModelled("no softcap")
        return exact.loss(softcap * np.tanh(z / softcap), y, dtype, axis, z_loss, None)
    return Variant(loss=loss, scale=exact.scale)


def _loss_model(op: str, loss: Callable, grad: Callable | None = None) -> Variant:
    exact = _exact(op)
    return Variant(loss=loss, scale=exact.scale, grad=grad)


# (op, model name) -> the model as a reference variant: loss (and gradient where modelled)
FORMULAS: dict[tuple[str, str], Variant] = {
    ("sigmoid_cross_entropy", "log_of_one_plus_exp"): _loss_model("sigmoid_cross_entropy", _log_of_one_plus_exp),
    ("sigmoid_cross_entropy", "one_minus_y_z_minus_log_sigmoid"):
        _loss_model("sigmoid_cross_entropy", _one_minus_y_z_minus_log_sigmoid),
    ("sigmoid_cross_entropy", "logaddexp_minus_zy"):
        _loss_model("sigmoid_cross_entropy", _logaddexp_minus_zy, _logaddexp_minus_zy_grad),
    ("sigmoid_cross_entropy", "weighted_gradient_as_written"):
        Variant(loss=_exact("sigmoid_cross_entropy").loss, scale=_exact("sigmoid_cross_entropy").scale,
                grad=_weighted_grad_as_written),
    ("sigmoid_cross_entropy", "log_sigmoid_terms_without_log1p"):
        _loss_model("sigmoid_cross_entropy", _log_sigmoid_terms_without_log1p),
    ("sigmoid_cross_entropy", "log_of_one_minus_p"):
        _loss_model("sigmoid_cross_entropy", _sigmoid_clip_then_log_of_one_minus_p),
    ("binary_crossentropy", "log_of_one_minus_p"): _loss_model("binary_crossentropy", _clip_then_log_of_one_minus_p),
    ("softmax_cross_entropy", "lse_minus_labels_dot_logits"):
        Variant(loss=_lse_minus_labels_dot_logits, scale=_exact("softmax_cross_entropy").scale,
                grad=_softmax_minus_labels, grad_labels=_minus_logits),
    ("softmax_cross_entropy", "soft_cap_unmasking"): _cap_unmasking("softmax_cross_entropy"),
    ("sparse_softmax_cross_entropy", "soft_cap_unmasking"): _cap_unmasking("sparse_softmax_cross_entropy"),
    ("sparse_softmax_cross_entropy", "lse_rounded_before_subtracting"):
        _loss_model("sparse_softmax_cross_entropy", _lse_rounded_before_subtracting),
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
