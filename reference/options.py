"""Options that act the same way on every variant: label smoothing, class weights, ignored
labels. Each becomes dense labels and per-example weights, so the loss functions stay the
plain definitions:

- label smoothing: y -> y (1 - s) + s / K, with K = 2 for binary losses and the number of
  classes for categorical ones;
- class weights w_c: -sum_c w_c y_c log p_c, i.e. labels w * y. With integer labels each
  example also counts w[label] in the denominator of a mean (PyTorch's definition); with
  probability labels a mean still divides by the number of examples;
- ignore_index: the example's loss is 0 and it leaves the mean's denominator;
- a label outside [0, classes) (other than ignore_index) has no loss: NaN, and so is any
  reduction over it;
- sample weights (one per unreduced loss) multiply the losses; a mean still divides by their
  number, a weighted_mean by the sum of the weights.

Integer labels with smoothing or class weights are turned into their dense (one-hot) form,
so the sparse op is evaluated as its softmax counterpart.
"""
from dataclasses import dataclass

import numpy as np

DENSE_FORM = {"sparse_softmax_cross_entropy": "softmax_cross_entropy",
              "sparse_categorical_crossentropy": "categorical_crossentropy"}
BINARY = ("sigmoid_cross_entropy", "binary_crossentropy")


@dataclass
class Prepared:
    op: str
    labels: np.ndarray
    example_weights: np.ndarray | None  # multiplies each unreduced loss; None: all 1
    mean_weights: np.ndarray | None  # summed for a mean's denominator; None: the count


def prepare(op, prediction, labels, options, integer_labels):
    smoothing = float(options.get("label_smoothing") or 0.0)
    weight = options.get("weight")
    ignore = options.get("ignore_index")
    axis = options.get("axis", -1)
    example_weights = mean_weights = None

    if integer_labels:
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
        if smoothing or weight is not None:
            classes = prediction.shape[axis]
            labels = np.moveaxis(np.eye(classes)[labels], -1, axis)
            op = DENSE_FORM[op]

    sample_weight = options.get("sample_weight")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, np.float64)
        example_weights = sample_weight if example_weights is None else example_weights * sample_weight
        if options.get("reduction") == "weighted_mean":
            mean_weights = sample_weight

    if smoothing:
        classes = 2 if op in BINARY else prediction.shape[axis]
        labels = labels * (1.0 - smoothing) + smoothing / classes
    if weight is not None:
        shape = [1] * prediction.ndim
        shape[axis] = -1
        labels = labels * np.reshape(np.asarray(weight, np.float64), shape)
    return Prepared(op, labels, example_weights, mean_weights)


def per_example(values, weights, axis=None):
    """values * weights, expanding weights over a class axis when values keep one."""
    if weights is None:
        return values
    if axis is not None and np.ndim(values) > np.ndim(weights):
        weights = np.expand_dims(weights, axis)
    return values * weights


def label_factor(prediction, options):
    """d y' / d y of the label transform y' = (y (1 - s) + s / K) w: (1 - s) w."""
    factor = 1.0 - float(options.get("label_smoothing") or 0.0)
    weight = options.get("weight")
    if weight is None:
        return factor
    shape = [1] * prediction.ndim
    shape[options.get("axis", -1)] = -1
    return factor * np.reshape(np.asarray(weight, np.float64), shape)
