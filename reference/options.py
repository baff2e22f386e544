"""The option pipeline: options that act the same way on every variant, applied around the
variants' own functions, which stay the plain definitions.

- label smoothing: y -> y (1 - s) + s / K, with K = 2 for binary losses (no class axis) and
  the number of classes for categorical ones;
- class weights w_c: -sum_c w_c y_c log p_c, i.e. labels w * y. With integer labels each
  example also counts w[label] in the denominator of a mean (PyTorch's definition); with
  probability labels a mean still divides by the number of examples;
- ignore_index: the example's loss is 0 and it leaves the mean's denominator;
- a label outside [0, classes) (other than ignore_index) has no loss: NaN, and so is any
  reduction over it; so has an example whose input leaves the [0, 1] an op declares for it
  (binary targets and predicted probabilities: pytorch raises there);
- sample weights (one per unreduced loss) multiply the losses; a mean still divides by their
  number, a weighted_mean by the sum of the weights;
- reduction: none keeps the unreduced losses, sum adds them, mean divides the sum by the
  number of losses (Keras' sum_over_batch_size, PyTorch), weighted_mean by the sum of the
  sample weights (Keras' mean_with_sample_weight).

Integer labels with smoothing or class weights are turned into their dense (one-hot) form,
so the sparse op is evaluated by its dense form.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from reference.numerics.conditioning import summation
from reference.numerics.softmax import along
from reference.numerics.terms import accurate_sum
from reference.option_declaration import Option, by_name

if TYPE_CHECKING:
    from reference.declaration import Op

REDUCTIONS = ("none", "sum", "mean", "weighted_mean")

# The declarations of the options applied here (and of `axis`, which ops with a class axis
# take); an op lists those it takes, and ops' own options are declared in their modules.
REDUCTION = Option(
    name="reduction", kind="choice", choices=REDUCTIONS, default="none",
    description="none keeps the unreduced losses; sum adds them; mean divides the sum by their number, "
                "weighted_mean by the sum of sample_weight",
    needs=(("weighted_mean", "sample_weight", "divides by the sum of sample_weight"),))
AXIS = Option(name="axis", kind="axis", default=-1, description="the class axis of the prediction")
LABEL_SMOOTHING = Option(
    name="label_smoothing", kind="number", minimum=0.0, maximum=1.0, default=0.0,
    description="labels become y (1 - s) + s / K, K the number of classes (2 for a binary loss)")
WEIGHT = Option(
    name="weight", kind="per_class", default=None,
    description="one weight per class, multiplying its label (a mean over integer labels divides by the "
                "targets' weights)")
IGNORE_INDEX = Option(
    name="ignore_index", kind="integer", default=None,
    description="an integer label equal to it has loss 0 and leaves a mean's denominator")
SAMPLE_WEIGHT = Option(name="sample_weight", kind="per_loss", default=None,
                       description="one weight per unreduced loss, multiplying it")

SHARED_OPTIONS = by_name([SAMPLE_WEIGHT])  # options every op takes
# The options applied here, around the variants' functions; an op's other options go to them.
PIPELINE_OPTIONS = ("reduction", "label_smoothing", "weight", "ignore_index", *SHARED_OPTIONS)


@dataclass
class Prepared:
    labels: np.ndarray
    dense: bool  # integer labels were made one-hot: the op's dense form evaluates them
    example_weights: np.ndarray | None  # multiplies each unreduced loss; None: all 1
    mean_weights: np.ndarray | None  # summed for a mean's denominator; None: the count
    prediction: np.ndarray  # as given, but 1/2 where an example is undefined (its weight is NaN)


def prepare(op: "Op", prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any]) -> Prepared:
    smoothing = float(options.get("label_smoothing") or 0.0)
    weight = options.get("weight")
    ignore = options.get("ignore_index")
    axis = options.get("axis", -1)
    example_weights = mean_weights = None
    dense = False

    if not op.integer_labels:
        outside = _outside_unit_interval(op, prediction, labels)
        if outside is not None and outside.any():
            # The variants evaluate a harmless 1/2 there (no log of a negative); NaN marks the loss.
            example_weights = np.where(outside, np.nan, 1.0)
            prediction = np.where(outside, 0.5, prediction) if op.prediction == "probs" else prediction
            labels = np.where(outside, 0.5, labels)
    else:
        valid = np.ones(np.shape(labels), bool) if ignore is None else labels != ignore
        classes = prediction.shape[axis] if prediction.ndim else 0
        undefined = valid & ((labels < 0) | (labels >= classes))
        valid &= ~undefined
        labels = np.where(valid, labels, 0)
        if ignore is not None or undefined.any():
            example_weights = np.where(undefined, np.nan, valid * 1.0)
        if weight is not None:
            mean_weights = np.where(valid, np.asarray(weight, np.float64)[labels], 0.0)
        elif ignore is not None:
            mean_weights = valid * 1.0
        if smoothing or weight is not None:  # one-hot rows (not np.eye(classes)[labels]: V^2 floats)
            dense_labels = np.zeros(prediction.shape, np.float64)
            np.put_along_axis(dense_labels, np.expand_dims(labels, axis), 1.0, axis=axis)
            labels = dense_labels
            dense = True

    sample_weight = options.get("sample_weight")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, np.float64)
        example_weights = sample_weight if example_weights is None else example_weights * sample_weight
        if options.get("reduction") == "weighted_mean":
            mean_weights = sample_weight

    # The one-hot rows made above are this function's own: transformed in place (at a vocabulary
    # of 128256 each copy is as large as the logits); labels given as floats are not written to.
    if smoothing:
        classes = prediction.shape[axis] if op.class_axis else 2
        labels = np.multiply(labels, 1.0 - smoothing, out=labels) if dense else labels * (1.0 - smoothing)
        labels += smoothing / classes
    if weight is not None:
        factor = np.reshape(np.asarray(weight, np.float64), along(axis, prediction.ndim))
        labels = np.multiply(labels, factor, out=labels) if dense else labels * factor
    return Prepared(labels, dense, example_weights, mean_weights, prediction)


def _outside_unit_interval(op: "Op", prediction: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Per example: an input the op defines on [0, 1] holds a value outside; None where none is."""
    inputs = {op.prediction: prediction, "labels": labels}
    outside = None
    for name in op.unit_interval:
        values = np.asarray(inputs[name], np.float64)
        here = (values < 0) | (values > 1)
        outside = here if outside is None else outside | here
    return outside


def per_example(values: np.ndarray, weights: np.ndarray | None, axis: int | None = None) -> np.ndarray:
    """values * weights, expanding weights over a class axis when values keep one."""
    if weights is None:
        return values
    if axis is not None and np.ndim(values) > np.ndim(weights):
        weights = np.expand_dims(weights, axis)
    return values * weights


def label_factor(prediction: np.ndarray, options: Mapping[str, Any]) -> np.ndarray | float:
    """d y' / d y of the label transform y' = (y (1 - s) + s / K) w: (1 - s) w."""
    factor = 1.0 - float(options.get("label_smoothing") or 0.0)
    weight = options.get("weight")
    if weight is None:
        return factor
    return factor * np.reshape(np.asarray(weight, np.float64), along(options.get("axis", -1), prediction.ndim))


def _denominator(values: np.ndarray, prepared: Prepared) -> float:
    if prepared.mean_weights is not None:
        return float(np.sum(prepared.mean_weights))
    return float(np.size(values))


def _mean_or_sum(total: np.ndarray, values: np.ndarray, reduction: str, prepared: Prepared) -> np.ndarray | float:
    if reduction in ("mean", "weighted_mean"):
        return total / _denominator(values, prepared) if np.size(values) else np.float64(np.nan)
    return total


def reduce_loss(loss: np.ndarray, reduction: str, prepared: Prepared) -> np.ndarray | float:
    """The weighted losses, or their sum (in double-double, rounded once) or mean."""
    values = per_example(loss, prepared.example_weights)
    if reduction == "none":
        return values
    return _mean_or_sum(accurate_sum(np.ravel(values)), values, reduction, prepared)


def reduce_scale(scale: np.ndarray, loss: np.ndarray, reduction: str, prepared: Prepared) -> np.ndarray | float:

    """The conditioning scale of reduce_loss: the terms' scales and the summation's rounding."""
    values = per_example(scale, prepared.example_weights)
    if reduction == "none":
        return values
    total = np.sum(values) + summation(per_example(loss, prepared.example_weights))
    return _mean_or_sum(total, values, reduction, prepared)


def grad_denominator(prediction: np.ndarray, axis: int | None, prepared: Prepared) -> float:
    """What a mean divides by: the count of unreduced losses, or the sum of the examples' weights."""
    n = prediction.size // (prediction.shape[axis] if axis is not None and prediction.ndim else 1)
    return float(np.sum(prepared.mean_weights)) if prepared.mean_weights is not None else n
