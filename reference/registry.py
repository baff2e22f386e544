"""The canonical ops: their inputs, options, semantic variants, gradients and conditioning.

One table, read by the case validator (which ops and options exist), the adapters (which
variant each framework follows) and the checks (what to expect, how much rounding to allow).
"""
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from reference import conditioning, gradients, losses, variants


@dataclass(frozen=True)
class Variant:
    loss: Callable  # (prediction, labels, dtype, **options) -> unreduced float64 loss
    scale: Callable  # (prediction, labels, loss, dtype, **options) -> conditioning scale
    grad: Callable | None = None  # (prediction, labels, **options) -> d loss / d prediction
    grad_scale: Callable | None = None
    doc: str = ""


@dataclass(frozen=True)
class Op:
    name: str
    prediction: str  # the input that is differentiated: logits, probs or predictions
    integer_labels: bool
    class_axis: bool  # the loss sums over a class axis (given by the `axis` option)
    options: Mapping[str, object]  # option name -> default
    variants: Mapping[str, Variant] = field(default_factory=dict)


REDUCTIONS = ("none", "sum", "mean")


def _sigmoid_exact(z, y, dtype):
    return losses.sigmoid_cross_entropy(z, y)


def _sigmoid_scale(z, y, loss, dtype):
    return conditioning.sigmoid_cross_entropy(z, y, loss)


def _sigmoid_keras_numpy_scale(z, y, loss, dtype):
    a = variants.keras_clip(losses.sigmoid(z), dtype)
    sens = np.nan_to_num(np.abs(z) * (1.0 - losses.sigmoid(np.abs(z))), posinf=0.0)
    return conditioning.binary_crossentropy(a, y, loss, p_computed=1.0 + sens)


def _bce_scale(transform, p_computed):
    def scale(p, y, loss, dtype):
        return conditioning.binary_crossentropy(transform(p, dtype), y, loss, p_computed)
    return scale


def _bce_keras2_logit_scale(p, y, loss, dtype):
    """The recovered logit is stored in dtype: its rounding (eps |z'|) moves the sigmoid CE."""
    pc = variants.keras_clip(p, dtype)
    z = np.log(pc / (1.0 - pc))
    return conditioning.sigmoid_cross_entropy(z, y, loss) + np.abs(losses.sigmoid(z) - y) * (np.abs(z) + 2.0)


def _bce_torch_scale(p, y, loss, dtype):
    """As the exact form, with each log term's magnitude capped where torch clamps it at -100."""
    with np.errstate(divide="ignore"):
        log_p = np.minimum(np.abs(np.log(p)), -variants.TORCH_LOG_FLOOR)
        log_q = np.minimum(np.abs(np.log1p(-p)), -variants.TORCH_LOG_FLOOR)
    q_computed = np.where(p >= 0.5, 0.0, 1.0)
    return np.abs(loss) + np.abs(losses.times(y, log_p)) + np.abs(losses.times(1.0 - y, log_q + q_computed))


def _identity(p, dtype):
    return p


OPS: dict[str, Op] = {
    "sigmoid_cross_entropy": Op(
        "sigmoid_cross_entropy", "logits", False, False, {"reduction": "none"},
        {
            "exact": Variant(_sigmoid_exact, _sigmoid_scale,
                             lambda z, y: gradients.sigmoid_cross_entropy(z, y),
                             lambda z, y: conditioning.sigmoid_grad(z, y),
                             "-[y log sigmoid(z) + (1 - y) log sigmoid(-z)]"),
            "keras_numpy": Variant(variants.sigmoid_keras_numpy, _sigmoid_keras_numpy_scale,
                                   doc="sigmoid, then the Keras 3 clip, then binary cross-entropy"),
        },
    ),
    "binary_crossentropy": Op(
        "binary_crossentropy", "probs", False, False, {"reduction": "none"},
        {
            "exact": Variant(lambda p, y, dtype: losses.binary_crossentropy(p, y),
                             _bce_scale(_identity, 0.0), doc="-[y log p + (1 - y) log(1 - p)]"),
            "keras3_clip": Variant(variants.bce_keras3_clip, _bce_scale(variants.keras_clip, 0.0),
                                   doc="clip p to [eps, 1 - eps], eps = 1e-7"),
            "keras2_logit": Variant(variants.bce_keras2_logit, _bce_keras2_logit_scale,
                                    doc="clip, logit transform, sigmoid cross-entropy (Keras 2.2)"),
            "tf_keras_eps_log": Variant(variants.bce_tf_keras, _bce_scale(variants.keras_clip, 1.0),
                                        doc="clip, then log(p + eps) and log(1 - p + eps)"),
            "torch_clamp_log": Variant(variants.bce_torch, _bce_torch_scale,
                                       doc="each log term clamped at -100"),
        },
    ),
    "softmax_cross_entropy": Op(
        "softmax_cross_entropy", "logits", False, True, {"reduction": "none", "axis": -1},
        {
            "exact": Variant(lambda z, y, dtype, axis: losses.softmax_cross_entropy(z, y, axis),
                             lambda z, y, loss, dtype, axis: conditioning.softmax_cross_entropy(z, y, loss, axis),
                             gradients.softmax_cross_entropy, conditioning.softmax_grad,
                             "-sum y log softmax(z)"),
        },
    ),
    "categorical_crossentropy": Op(
        "categorical_crossentropy", "probs", False, True, {"reduction": "none", "axis": -1},
        {
            "exact": Variant(lambda p, y, dtype, axis: losses.categorical_crossentropy(p, y, axis),
                             lambda p, y, loss, dtype, axis: conditioning.categorical_crossentropy(p, y, loss, axis),
                             doc="-sum y log p"),
            "keras_normalize_clip": Variant(
                variants.cce_keras_normalize_clip,
                lambda p, y, loss, dtype, axis: conditioning.categorical_crossentropy(
                    variants.keras_clip(variants.keras_normalize(p, axis), dtype), y, loss, axis, 1.0),
                doc="p / sum(p), clip to [eps, 1 - eps], -sum y log p"),
        },
    ),
    "sparse_softmax_cross_entropy": Op(
        "sparse_softmax_cross_entropy", "logits", True, True, {"reduction": "none", "axis": -1},
        {
            "exact": Variant(lambda z, y, dtype, axis: losses.sparse_softmax_cross_entropy(z, y, axis),
                             lambda z, y, loss, dtype, axis: conditioning.sparse_softmax_cross_entropy(z, y, loss, axis),
                             gradients.sparse_softmax_cross_entropy, conditioning.sparse_softmax_grad,
                             "logsumexp(z) - z[label]"),
        },
    ),
    "sparse_categorical_crossentropy": Op(
        "sparse_categorical_crossentropy", "probs", True, True, {"reduction": "none", "axis": -1},
        {
            "exact": Variant(lambda p, y, dtype, axis: losses.sparse_categorical_crossentropy(p, y, axis),
                             lambda p, y, loss, dtype, axis: conditioning.sparse_categorical_crossentropy(p, y, loss, axis),
                             doc="-log p[label]"),
            "keras_normalize_clip": Variant(
                variants.scce_keras_normalize_clip,
                lambda p, y, loss, dtype, axis: conditioning.sparse_categorical_crossentropy(
                    variants.keras_clip(variants.keras_normalize(p, axis), dtype), y, loss, axis, 1.0),
                doc="p / sum(p), clip to [eps, 1 - eps], -log p[label]"),
            "keras_clip_normalize": Variant(
                variants.scce_keras_clip_normalize,
                lambda p, y, loss, dtype, axis: conditioning.sparse_categorical_crossentropy(
                    variants.keras_normalize(variants.keras_clip(p, dtype), axis), y, loss, axis, 1.0),
                doc="clip to [eps, 1 - eps], then -log(c[label] / sum(c))"),
        },
    ),
    "mean_squared_error": Op(
        "mean_squared_error", "predictions", False, False, {"reduction": "none", "half": False},
        {
            "exact": Variant(lambda a, y, dtype, half: losses.mean_squared_error(a, y, half),
                             lambda a, y, loss, dtype, half: conditioning.mean_squared_error(loss),
                             gradients.mean_squared_error,
                             lambda a, y, half: conditioning.squared_error_grad(a, y),
                             "(a - y)^2, or 1/2 (a - y)^2 with half"),
        },
    ),
}


def variant_names(op):
    return tuple(OPS[op].variants)


def _op_options(op, options):
    """The options an op's functions take (reduction is applied here, not by them)."""
    return {k: options.get(k, default) for k, default in OPS[op].options.items() if k != "reduction"}


def _split(op, inputs):
    spec = OPS[op]
    prediction = np.asarray(inputs[spec.prediction], np.float64)
    labels = np.asarray(inputs["labels"], np.int64 if spec.integer_labels else np.float64)
    return prediction, labels


def _reduce(values, reduction, is_scale=False, loss=None):
    if reduction == "none":
        return values
    total = np.sum(values)
    if is_scale:
        total = total + conditioning.summation(loss)
    return total / values.size if reduction == "mean" and values.size else total


def _unreduced(op, variant, inputs, options, dtype):
    prediction, labels = _split(op, inputs)
    return OPS[op].variants[variant].loss(prediction, labels, dtype, **_op_options(op, options))


def evaluate_loss(op, variant, inputs, options, dtype):
    """The loss in float64, reduced as options['reduction'] says."""
    return np.asarray(_reduce(_unreduced(op, variant, inputs, options, dtype), options.get("reduction", "none")))


def evaluate_scale(op, variant, inputs, options, dtype):
    """The conditioning scale of evaluate_loss, same shape."""
    prediction, labels = _split(op, inputs)
    spec = OPS[op].variants[variant]
    loss = spec.loss(prediction, labels, dtype, **_op_options(op, options))
    scale = spec.scale(prediction, labels, loss, dtype, **_op_options(op, options))
    return np.asarray(_reduce(scale, options.get("reduction", "none"), True, loss))


def has_grad(op, variant):
    return OPS[op].variants[variant].grad is not None


def grad_factor(op, inputs, options):
    """d reduce(L) / d L_i: 1 for none (we differentiate sum(L)) and sum, 1 / N for mean.

    N is the number of unreduced losses: elements for elementwise ops, rows for class ops.
    """
    if options.get("reduction", "none") != "mean":
        return 1.0
    prediction, _ = _split(op, inputs)
    n = prediction.size
    if OPS[op].class_axis and prediction.ndim:
        n //= max(prediction.shape[options.get("axis", -1)], 1)
    return 1.0 / n if n else 1.0


def evaluate_grad(op, variant, inputs, options, dtype):
    """d sum(reduce(L)) / d prediction, and its conditioning scale."""
    prediction, labels = _split(op, inputs)
    spec = OPS[op].variants[variant]
    opts = _op_options(op, options)
    factor = grad_factor(op, inputs, options)
    return factor * spec.grad(prediction, labels, **opts), factor * spec.grad_scale(prediction, labels, **opts)
