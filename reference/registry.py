"""The canonical ops: their inputs, options, semantic variants, gradients and conditioning.

One table, read by the case validator (which ops and options exist), the adapters (which
variant each framework follows) and the checks (what to expect, how much rounding to allow).
"""
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from reference import conditioning, gradients, label_gradients, losses, variants
from reference import options as options_module


@dataclass(frozen=True)
class Variant:
    loss: Callable  # (prediction, labels, dtype, **options) -> unreduced float64 loss
    scale: Callable  # (prediction, labels, loss, dtype, **options) -> conditioning scale
    grad: Callable | None = None  # (prediction, labels, dtype, **options) -> d loss / d prediction
    grad_scale: Callable | None = None  # same arguments -> its conditioning scale
    doc: str = ""
    grad_labels: Callable | None = None  # same arguments -> (d loss / d labels, its scale)


@dataclass(frozen=True)
class Op:
    name: str
    prediction: str  # the input that is differentiated: logits, probs or predictions
    integer_labels: bool
    class_axis: bool  # the loss sums over a class axis (given by the `axis` option)
    options: Mapping[str, object]  # option name -> default
    variants: Mapping[str, Variant] = field(default_factory=dict)


# mean divides by the number of losses (Keras' sum_over_batch_size, PyTorch); weighted_mean
# divides by the sum of the sample weights (Keras' mean_with_sample_weight).
REDUCTIONS = ("none", "sum", "mean", "weighted_mean")
# Options the ops' own functions take; the rest (reduction, smoothing, weights, ignore_index)
# are applied around them (reference/options.py).
FUNCTION_OPTIONS = ("axis", "half", "pos_weight")
SHARED_OPTIONS = {"sample_weight": None}  # options every op takes (applied in reference/options.py)


def _sigmoid_exact(z, y, dtype, pos_weight=None):
    """-[q y log sigmoid(z) + (1 - y) log sigmoid(-z)], q = pos_weight (1 when absent)."""
    return losses.sigmoid_cross_entropy(z, y, pos_weight)


def _sigmoid_scale(z, y, loss, dtype, pos_weight=None):
    return conditioning.sigmoid_cross_entropy(z, y, loss) * (1.0 if pos_weight is None else max(1.0, pos_weight))


def _sigmoid_grad(z, y, dtype, pos_weight=None):
    """sigmoid(z) - y, or (1 + (q - 1) y) sigmoid(z) - q y with a positive weight q."""
    return gradients.sigmoid_cross_entropy(z, y, pos_weight)


def _sigmoid_grad_scale(z, y, dtype, pos_weight=None):
    return conditioning.sigmoid_grad(z, y) * (1.0 if pos_weight is None else max(1.0, pos_weight))


def _sigmoid_keras_numpy(z, y, dtype, pos_weight=None):
    return variants.sigmoid_keras_numpy(z, y, dtype)


def _sigmoid_keras_numpy_scale(z, y, loss, dtype, pos_weight=None):
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


def _split_grad(pair):
    """(grad, grad_scale) functions from one that returns both."""
    return (lambda *args, **kwargs: pair(*args, **kwargs)[0]), (lambda *args, **kwargs: pair(*args, **kwargs)[1])


def _identity(p, dtype):
    return p


OPS: dict[str, Op] = {
    "sigmoid_cross_entropy": Op(
        "sigmoid_cross_entropy", "logits", False, False,
        {"reduction": "none", "label_smoothing": 0.0, "pos_weight": None},
        {
            "exact": Variant(_sigmoid_exact, _sigmoid_scale, _sigmoid_grad, _sigmoid_grad_scale,
                             "-[y log sigmoid(z) + (1 - y) log sigmoid(-z)]", label_gradients.sigmoid_exact),
            "keras_numpy": Variant(_sigmoid_keras_numpy, _sigmoid_keras_numpy_scale,
                                   doc="sigmoid, then the Keras 3 clip, then binary cross-entropy"),
        },
    ),
    "binary_crossentropy": Op(
        "binary_crossentropy", "probs", False, False, {"reduction": "none", "label_smoothing": 0.0},
        {
            "exact": Variant(lambda p, y, dtype: losses.binary_crossentropy(p, y),
                             _bce_scale(_identity, 0.0), *_split_grad(variants.bce_grad_exact),
                             doc="-[y log p + (1 - y) log(1 - p)]", grad_labels=label_gradients.bce_exact),
            "keras3_clip": Variant(variants.bce_keras3_clip, _bce_scale(variants.keras_clip, 0.0),
                                   *_split_grad(variants.bce_grad_keras_clip),
                                   doc="clip p to [eps, 1 - eps], eps = 1e-7", grad_labels=label_gradients.bce_keras_clip),
            "keras2_logit": Variant(variants.bce_keras2_logit, _bce_keras2_logit_scale,
                                    *_split_grad(variants.bce_grad_keras_clip),
                                    doc="clip, logit transform, sigmoid cross-entropy (Keras 2.2)",
                                    grad_labels=label_gradients.bce_keras_clip),
            "tf_keras_eps_log": Variant(variants.bce_tf_keras, _bce_scale(variants.keras_clip, 1.0),
                                        *_split_grad(variants.bce_grad_tf_keras),
                                        doc="clip, then log(p + eps) and log(1 - p + eps)",
                                        grad_labels=label_gradients.bce_tf_keras),
            "torch_clamp_log": Variant(variants.bce_torch, _bce_torch_scale, *_split_grad(variants.bce_grad_torch),
                                       doc="each log term clamped at -100", grad_labels=label_gradients.bce_torch),
        },
    ),
    "softmax_cross_entropy": Op(
        "softmax_cross_entropy", "logits", False, True,
        {"reduction": "none", "axis": -1, "label_smoothing": 0.0, "weight": None},
        {
            "exact": Variant(lambda z, y, dtype, axis: losses.softmax_cross_entropy(z, y, axis),
                             lambda z, y, loss, dtype, axis: conditioning.softmax_cross_entropy(z, y, loss, axis),
                             lambda z, y, dtype, axis: gradients.softmax_cross_entropy(z, y, axis),
                             lambda z, y, dtype, axis: conditioning.softmax_grad(z, y, axis),
                             "-sum y log softmax(z)", label_gradients.softmax_exact),
        },
    ),
    "categorical_crossentropy": Op(
        "categorical_crossentropy", "probs", False, True,
        {"reduction": "none", "axis": -1, "label_smoothing": 0.0},
        {
            "exact": Variant(lambda p, y, dtype, axis: losses.categorical_crossentropy(p, y, axis),
                             lambda p, y, loss, dtype, axis: conditioning.categorical_crossentropy(p, y, loss, axis),
                             *_split_grad(variants.cce_grad_exact), doc="-sum y log p",
                             grad_labels=label_gradients.categorical_exact),
            "keras_normalize_clip": Variant(
                variants.cce_keras_normalize_clip,
                lambda p, y, loss, dtype, axis: conditioning.categorical_crossentropy(
                    variants.keras_clip(variants.keras_normalize(p, axis), dtype), y, loss, axis, 1.0),
                *_split_grad(variants.cce_grad_keras_normalize_clip),
                doc="p / sum(p), clip to [eps, 1 - eps], -sum y log p",
                grad_labels=label_gradients.categorical_keras_normalize_clip),
        },
    ),
    "sparse_softmax_cross_entropy": Op(
        "sparse_softmax_cross_entropy", "logits", True, True,
        {"reduction": "none", "axis": -1, "label_smoothing": 0.0, "weight": None, "ignore_index": None},
        {
            "exact": Variant(lambda z, y, dtype, axis: losses.sparse_softmax_cross_entropy(z, y, axis),
                             lambda z, y, loss, dtype, axis: conditioning.sparse_softmax_cross_entropy(z, y, loss, axis),
                             lambda z, y, dtype, axis: gradients.sparse_softmax_cross_entropy(z, y, axis),
                             lambda z, y, dtype, axis: conditioning.sparse_softmax_grad(z, y, axis),
                             "logsumexp(z) - z[label]"),
        },
    ),
    "sparse_categorical_crossentropy": Op(
        "sparse_categorical_crossentropy", "probs", True, True,
        {"reduction": "none", "axis": -1, "ignore_index": None},
        {
            "exact": Variant(lambda p, y, dtype, axis: losses.sparse_categorical_crossentropy(p, y, axis),
                             lambda p, y, loss, dtype, axis: conditioning.sparse_categorical_crossentropy(p, y, loss, axis),
                             *_split_grad(variants.scce_grad_exact), doc="-log p[label]"),
            "keras_normalize_clip": Variant(
                variants.scce_keras_normalize_clip,
                lambda p, y, loss, dtype, axis: conditioning.sparse_categorical_crossentropy(
                    variants.keras_clip(variants.keras_normalize(p, axis), dtype), y, loss, axis, 1.0),
                *_split_grad(variants.scce_grad_keras_normalize_clip),
                doc="p / sum(p), clip to [eps, 1 - eps], -log p[label]"),
            "keras_clip_normalize": Variant(
                variants.scce_keras_clip_normalize,
                lambda p, y, loss, dtype, axis: conditioning.sparse_categorical_crossentropy(
                    variants.keras_normalize(variants.keras_clip(p, dtype), axis), y, loss, axis, 1.0),
                *_split_grad(variants.scce_grad_keras_clip_normalize),
                doc="clip to [eps, 1 - eps], then -log(c[label] / sum(c))"),
        },
    ),
    "mean_squared_error": Op(
        "mean_squared_error", "predictions", False, False, {"reduction": "none", "half": False},
        {
            "exact": Variant(lambda a, y, dtype, half: losses.mean_squared_error(a, y, half),
                             lambda a, y, loss, dtype, half: conditioning.mean_squared_error(loss),
                             lambda a, y, dtype, half: gradients.mean_squared_error(a, y, half),
                             lambda a, y, dtype, half: conditioning.squared_error_grad(a, y),
                             "(a - y)^2, or 1/2 (a - y)^2 with half", label_gradients.squared_error),
        },
    ),
}


def variant_names(op):
    return tuple(OPS[op].variants)


def _op_options(op, options):
    """The options an op's own functions take (axis, half, pos_weight)."""
    return {k: options.get(k, default) for k, default in OPS[op].options.items() if k in FUNCTION_OPTIONS}


def _split(op, inputs):
    spec = OPS[op]
    prediction = np.asarray(inputs[spec.prediction], np.float64)
    labels = np.asarray(inputs["labels"], np.int64 if spec.integer_labels else np.float64)
    return prediction, labels


def _prepare(op, inputs, options):
    prediction, labels = _split(op, inputs)
    return prediction, options_module.prepare(op, prediction, labels, options, OPS[op].integer_labels)


def _variant(op, prepared_op, variant):
    """The variant to evaluate: the dense form of a sparse op has the same variant names."""
    variants = OPS[prepared_op].variants
    return variants[variant] if variant in variants else variants["exact"]


def _denominator(loss, prepared):
    if prepared.mean_weights is not None:
        return float(np.sum(prepared.mean_weights))
    return float(np.size(loss))


def _reduce(values, reduction, prepared, is_scale=False, loss=None):
    values = options_module.per_example(values, prepared.example_weights)
    if reduction == "none":
        return values
    total = np.sum(values) if is_scale else losses.accurate_sum(np.ravel(values))  # rounded once
    if is_scale:
        total = total + conditioning.summation(options_module.per_example(loss, prepared.example_weights))
    if reduction in ("mean", "weighted_mean"):
        return total / _denominator(values, prepared) if np.size(values) else np.float64(np.nan)
    return total


def evaluate_loss(op, variant, inputs, options, dtype):
    """The loss in float64, reduced as options['reduction'] says."""
    prediction, prepared = _prepare(op, inputs, options)
    spec = _variant(op, prepared.op, variant)
    loss = spec.loss(prediction, prepared.labels, dtype, **_op_options(prepared.op, options))
    return np.asarray(_reduce(loss, options.get("reduction", "none"), prepared))


def evaluate_scale(op, variant, inputs, options, dtype):
    """The conditioning scale of evaluate_loss, same shape."""
    prediction, prepared = _prepare(op, inputs, options)
    spec = _variant(op, prepared.op, variant)
    opts = _op_options(prepared.op, options)
    loss = spec.loss(prediction, prepared.labels, dtype, **opts)
    scale = spec.scale(prediction, prepared.labels, loss, dtype, **opts)
    return np.asarray(_reduce(scale, options.get("reduction", "none"), prepared, True, loss))


def has_grad(op, variant, quantity="grad_logits"):
    spec = OPS[op].variants[variant]
    return (spec.grad if quantity == "grad_logits" else spec.grad_labels) is not None


def evaluate_grad(op, variant, inputs, options, dtype, wrt="prediction"):
    """d sum(reduce(L)) / d prediction (or / d labels), and its conditioning scale.

    reduction none is differentiated as sum(L); a mean divides by its denominator (the count
    of unreduced losses, or the sum of the examples' weights). For the labels, the options'
    label transform y -> (y (1 - s) + s / K) w contributes its factor (1 - s) w.
    """
    prediction, prepared = _prepare(op, inputs, options)
    spec = _variant(op, prepared.op, variant)
    opts = _op_options(prepared.op, options)
    axis = options.get("axis", -1) if OPS[op].class_axis else None
    if wrt == "labels":
        grad, scale = spec.grad_labels(prediction, prepared.labels, dtype, **opts)
        factor = options_module.label_factor(prediction, options)
        grad, scale = grad * factor, scale * np.abs(factor)
    else:
        grad = spec.grad(prediction, prepared.labels, dtype, **opts)
        scale = spec.grad_scale(prediction, prepared.labels, dtype, **opts)
    grad = options_module.per_example(grad, prepared.example_weights, axis)
    scale = options_module.per_example(scale, prepared.example_weights, axis)
    if options.get("reduction", "none") in ("mean", "weighted_mean"):
        n = prediction.size // (prediction.shape[axis] if axis is not None and prediction.ndim else 1)
        denominator = float(np.sum(prepared.mean_weights)) if prepared.mean_weights is not None else n
        with np.errstate(divide="ignore", invalid="ignore"):
            grad, scale = grad / np.float64(denominator), scale / np.float64(denominator)
    return grad, scale
