"""Where a known behaviour occurs, said of a check's options and inputs rather than of a case's
name, so that anyone's case that meets the behaviour is recognised and one that does not is
judged like any other.

A manifest entry's `when` holds:
- `options`: option -> value, a list of alternative values, `set` (given, and not the op's
  default) or `unset` (an option written as null is unset); values are compared as written,
  so `axis: 1` is not `axis: -1`; names, defaults and which options take words as values are
  read from the options' declarations (reference/option_declaration.py);
- `inputs`: predicates on the inputs as the dtype under test holds them, all of which must
  hold: a name (`every_target_ignored`) or a name with its parameter (`classes_at_least: 32000`);
- `model`: a model of what the framework computes (conformance.core.behaviour_models: its
  formula rounded per operation, the computation in float32, a convention, or its own
  variant); the entry covers a check only where that model's result is outside the check's
  tolerance, so a cancellation that a case's inputs do not trigger excuses nothing there.
"""
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from conformance.cases.pinned import pinned_shape
from conformance.sharded.layouts import Layout, split_axis
from reference.dtypes import FLOAT_DTYPES, constant
from reference.numerics.softmax import take_class
from reference.ops.keras_clip import KERAS_EPSILON
from reference.options import grad_denominator, prepare
from reference.option_declaration import Option
from reference.registry import OPS, SHARED_OPTIONS

SET, UNSET = "set", "unset"


@dataclass(frozen=True)
class Inputs:
    """A check's inputs as the predicates see them: float64 values the dtype holds."""
    op: str
    options: Mapping[str, Any]
    prediction: np.ndarray
    labels: np.ndarray
    layout: Layout | None = None  # how they are split across ranks (None: not split)

    @property
    def class_axis(self) -> int | None:
        if not OPS[self.op].class_axis or self.prediction.ndim == 0:
            return None
        return int(self.options.get("axis", -1)) % self.prediction.ndim

    @property
    def integer_labels(self) -> bool:
        return OPS[self.op].integer_labels


def _ignored(x: Inputs) -> np.ndarray:
    ignore = x.options.get("ignore_index")
    if not x.integer_labels or ignore is None:
        return np.zeros(x.labels.shape, bool)
    return x.labels == ignore


def _every_target_ignored(x: Inputs, _: object) -> bool:
    return x.labels.size > 0 and bool(np.all(_ignored(x)))


def _some_target_ignored(x: Inputs, _: object) -> bool:
    return bool(np.any(_ignored(x)))


def _empty_batch(x: Inputs, _: object) -> bool:
    return x.labels.size == 0 or x.prediction.size == 0


def _nonempty_batch(x: Inputs, _: object) -> bool:
    """At least one example: a reduction has something to reduce."""
    return not _empty_batch(x, None)


def _no_target_counts(x: Inputs, _: object) -> bool:
    """A mean over nothing: an empty batch, or every target ignored."""
    return _empty_batch(x, None) or _every_target_ignored(x, None)


def _ranks_weigh_targets_unequally(x: Inputs, _: object) -> bool:
    """Under a layout that splits the labels, the ranks' shares of the targets' total weight (one
    per counted target, or its class weight) differ: a mean of the ranks' own means is then not
    the mean (equal only where every rank weighs the same)."""
    if x.layout is None or not x.integer_labels or x.class_axis is None:
        return False
    axis = x.layout.labels_axis_index(x.prediction.ndim, x.class_axis)
    if axis is None:
        return False
    weight = x.options.get("weight")
    per_class = np.ones(x.prediction.shape[x.class_axis]) if weight is None else np.asarray(weight, np.float64)
    ignored = _ignored(x)
    labels = np.where(ignored, 0, x.labels).astype(np.int64)
    weights = np.where(ignored, 0.0, per_class[labels])
    shares = [float(np.sum(share)) for share in split_axis(weights, axis, x.layout.ranks)]
    return len(set(shares)) > 1


def _masked_logit(x: Inputs, _: object) -> bool:
    """A -inf logit: a masked or padded class."""
    return bool(np.any(x.prediction == -np.inf))


def _infinite_logit_times_zero_label(x: Inputs, _: object) -> bool:
    """An infinite logit that a formula multiplies by a zero label weight (0 x inf = NaN where the
    limit is finite): any infinite logit of a binary loss, which weighs z by y and by 1 - y; a
    -inf logit of a class whose label weight is 0 (not the example's label)."""
    if x.class_axis is None:
        return bool(np.any(np.isinf(x.prediction)))
    masked = x.prediction == -np.inf
    if not x.integer_labels:
        return bool(np.any(masked & (x.labels == 0)))
    classes = np.arange(x.prediction.shape[x.class_axis]).reshape(
        [-1 if i == x.class_axis else 1 for i in range(x.prediction.ndim)])
    return bool(np.any(masked & (classes != np.expand_dims(x.labels, x.class_axis))))


def _labels_out_of_range(x: Inputs, _: object) -> bool:
    if not x.integer_labels or x.class_axis is None:
        return False
    outside = (x.labels < 0) | (x.labels >= x.prediction.shape[x.class_axis])
    return bool(np.any(outside & ~_ignored(x)))


def _targets_outside_unit_interval(x: Inputs, _: object) -> bool:
    return "labels" in OPS[x.op].unit_interval and bool(np.any((x.labels < 0) | (x.labels > 1)))


def _probabilities_outside_unit_interval(x: Inputs, _: object) -> bool:
    return OPS[x.op].prediction in OPS[x.op].unit_interval and bool(np.any((x.prediction < 0) | (x.prediction > 1)))


def _undefined_labels(x: Inputs, _: object) -> bool:
    """Labels the loss is not defined for: a label outside the classes, a target outside [0, 1]."""
    return _labels_out_of_range(x, None) or _targets_outside_unit_interval(x, None)


def _certain_prediction_of_its_label(x: Inputs, _: object) -> bool:
    """A predicted probability of exactly 0 or 1 equal to its label: 0 x log 0 in the formula."""
    if OPS[x.op].prediction != "probs" or x.class_axis is not None:
        return False
    return bool(np.any(((x.prediction == 0) | (x.prediction == 1)) & (x.prediction == x.labels)))


def _labels_not_one_hot(x: Inputs, _: object) -> bool:
    """Probability labels of which some row is not one 1 among 0s, as given or once label
    smoothing spreads them."""
    if x.class_axis is None or x.integer_labels or x.labels.size == 0:
        return False
    if float(x.options.get("label_smoothing") or 0.0):
        return True
    ones = np.sum(x.labels == 1, axis=x.class_axis)
    zeros = np.sum(x.labels == 0, axis=x.class_axis)
    return bool(np.any((ones != 1) | (ones + zeros != x.labels.shape[x.class_axis])))


def _zero_logit(x: Inputs, _: object) -> bool:
    return bool(np.any(x.prediction == 0))


def _class_axis_not_last(x: Inputs, _: object) -> bool:
    return x.class_axis is not None and x.class_axis != x.prediction.ndim - 1


def _class_axis_not_second(x: Inputs, _: object) -> bool:
    """The classes are not on axis 1, where PyTorch's losses take them (an adapter permutes)."""
    return x.class_axis is not None and x.prediction.ndim > 1 and x.class_axis != 1


def _prediction_dims_at_least(x: Inputs, n: int) -> bool:
    """A prediction of n or more dimensions (a sequence model's [batch, sequence, classes])."""
    return x.prediction.ndim >= n


def _classes_at_least(x: Inputs, n: int) -> bool:
    return x.class_axis is not None and x.prediction.shape[x.class_axis] >= n


def _classes_at_most(x: Inputs, n: int) -> bool:
    return x.class_axis is not None and x.prediction.shape[x.class_axis] <= n


def _negative_with_probability_below(x: Inputs, bound: float) -> bool:
    """A binary prediction in (0, bound) with a label below 1: its loss -(1 - y) log(1 - p) is
    about p, which log(1 - p) loses to the rounding of 1 - p (log1p(-p) does not)."""
    if x.op != "binary_crossentropy":
        return False
    return bool(np.any((x.prediction > 0) & (x.prediction < bound) & (x.labels < 1)))


def _probability_on_keras_clip_bound(x: Inputs, _: object) -> bool:
    """A predicted probability exactly at Keras's clip bound eps or 1 - eps, as some float dtype
    stores them: where the clip is not differentiable, and frameworks split its gradient."""
    if OPS[x.op].prediction not in OPS[x.op].unit_interval:
        return False
    bounds = {bound for dtype in FLOAT_DTYPES
              for bound in (constant(KERAS_EPSILON, dtype), constant(1.0 - KERAS_EPSILON, dtype))}
    return bool(np.any(np.isin(x.prediction, sorted(bounds))))


def _label_logit_below_row_max_by(x: Inputs, gap: float) -> bool:
    """An integer label whose logit lies more than `gap` below its row's largest."""
    if not x.integer_labels or x.class_axis is None or x.labels.size == 0 or x.prediction.shape[x.class_axis] == 0:
        return False
    counted = ~_ignored(x) & (x.labels >= 0) & (x.labels < x.prediction.shape[x.class_axis])
    with np.errstate(invalid="ignore"):
        gaps = np.max(x.prediction, axis=x.class_axis) - take_class(x.prediction, np.where(counted, x.labels, 0),
                                                                    x.class_axis)
    return bool(np.any(gaps[counted] > gap))


def _reduction_factor_inexact_in_float32(x: Inputs, _: object) -> bool:
    """A reduction whose factors, each loss's weight over the denominator (the reference's own:
    the count of losses, the class weights of the targets that count, or the sum of the sample
    weights), are not all float32 numbers: a reduction taken in float32 rounds the gradient
    there (1/16 is exact, 1/12 and 2.3/16 are not)."""
    reduction = x.options.get("reduction", "none")
    if reduction == "none":
        return False
    prepared = prepare(OPS[x.op], x.prediction, x.labels, x.options)
    axis = x.class_axis
    shape = pinned_shape(OPS[x.op], {OPS[x.op].prediction: x.prediction, "labels": x.labels},
                         {**x.options, "reduction": "none"}, "loss")  # the unreduced losses
    weights = np.ones(shape) if prepared.example_weights is None else np.broadcast_to(prepared.example_weights, shape)
    if reduction == "sum":
        factors = weights
    else:
        denominator = grad_denominator(x.prediction, axis, prepared)
        if not denominator:
            return False
        factors = weights / denominator
    factors = factors[np.isfinite(factors)]
    return bool(np.any(factors.astype(np.float32).astype(np.float64) != factors))


def _label_smoothing_inexact_in_float32(x: Inputs, _: object) -> bool:
    s = float(x.options.get("label_smoothing") or 0.0)
    return float(np.float32(s)) != s


# name -> (predicate, the parameter's type or None when it takes none); a predicate's parameter
# is of that type, which parse_inputs makes sure of
PREDICATES: dict[str, tuple[Callable[[Inputs, Any], bool], type | None]] = {
    "every_target_ignored": (_every_target_ignored, None),
    "some_target_ignored": (_some_target_ignored, None),
    "empty_batch": (_empty_batch, None),
    "nonempty_batch": (_nonempty_batch, None),
    "no_target_counts": (_no_target_counts, None),
    "masked_logit": (_masked_logit, None),
    "infinite_logit_times_zero_label": (_infinite_logit_times_zero_label, None),
    "labels_out_of_range": (_labels_out_of_range, None),
    "targets_outside_unit_interval": (_targets_outside_unit_interval, None),
    "probabilities_outside_unit_interval": (_probabilities_outside_unit_interval, None),
    "undefined_labels": (_undefined_labels, None),
    "certain_prediction_of_its_label": (_certain_prediction_of_its_label, None),
    "labels_not_one_hot": (_labels_not_one_hot, None),
    "zero_logit": (_zero_logit, None),
    "ranks_weigh_targets_unequally": (_ranks_weigh_targets_unequally, None),
    "class_axis_not_last": (_class_axis_not_last, None),
    "class_axis_not_second": (_class_axis_not_second, None),
    "prediction_dims_at_least": (_prediction_dims_at_least, int),
    "classes_at_least": (_classes_at_least, int),
    "classes_at_most": (_classes_at_most, int),
    "label_logit_below_row_max_by": (_label_logit_below_row_max_by, float),
    "negative_with_probability_below": (_negative_with_probability_below, float),
    "probability_on_keras_clip_bound": (_probability_on_keras_clip_bound, None),
    "label_smoothing_inexact_in_float32": (_label_smoothing_inexact_in_float32, None),
    "reduction_factor_inexact_in_float32": (_reduction_factor_inexact_in_float32, None),
}


class ConditionError(ValueError):
    pass


def parse_inputs(value: object) -> tuple[tuple[str, object], ...]:
    """`inputs: [name, {name: parameter}]` -> ((name, parameter), ...), checked."""
    items = value if isinstance(value, list) else [value]
    parsed = []
    for item in items:
        name, parameter = (next(iter(item.items())) if isinstance(item, dict) and len(item) == 1
                           else (item, None))
        if not isinstance(name, str) or name not in PREDICATES:
            raise ConditionError(f"{item!r} is not a known predicate (known: {', '.join(PREDICATES)})")
        kind = PREDICATES[name][1]
        if kind is None and parameter is not None:
            raise ConditionError(f"{name} takes no parameter")
        if kind is not None:
            if isinstance(parameter, bool) or not isinstance(parameter, (int, float)):
                raise ConditionError(f"{name} takes a number, e.g. {{{name}: 64}}")
            parameter = kind(parameter)
        parsed.append((name, parameter))
    return tuple(parsed)


def _declarations() -> dict[str, Option]:
    """Every declared option by name (one name is one declaration, as the registry's ops list them)."""
    return {name: option for op in OPS.values() for name, option in {**op.options, **SHARED_OPTIONS}.items()}


def _takes_words(option: Option) -> bool:
    """Whether the option's values are words (reduction: mean), which `set` and `unset` are not."""
    return option.kind == "choice" and any(isinstance(choice, str) for choice in option.choices)


def parse_options(value: object) -> dict[str, Any]:
    """`options: {reduction: mean, label_smoothing: set}`, with option names checked."""
    if not isinstance(value, dict):
        raise ConditionError("a mapping of option -> value, list of values, set or unset")
    known = _declarations()
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ConditionError(f"unknown option {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for name, wanted in value.items():
        alternatives = wanted if isinstance(wanted, list) else [wanted]
        if not alternatives or not all(isinstance(a, (int, float, str)) for a in alternatives):
            raise ConditionError(f"{name}: a value, a list of alternative values, {SET} or {UNSET}")
        words = any(isinstance(a, str) for a in alternatives)
        if words and not _takes_words(known[name]) and wanted not in (SET, UNSET):
            raise ConditionError(f"{name}: {wanted!r} is not a value of it; {SET} or {UNSET} say whether it is given")
    return dict(value)


def options_hold(wanted: Mapping[str, object], op: str, options: Mapping[str, object]) -> bool:
    declared = {**SHARED_OPTIONS, **OPS[op].options}
    for name, expected in wanted.items():
        if name not in declared:
            return False
        default = declared[name].default
        value = options.get(name)
        value = default if value is None else value  # an option written as null is unset, as the reference reads it
        given = value is not None and not _same(value, default)
        if expected == SET:
            if not given:
                return False
        elif expected == UNSET:
            if given:
                return False
        elif not any(_same(value, each) for each in (expected if isinstance(expected, list) else [expected])):
            return False
    return True


def _same(a: object, b: object) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return a == b


def inputs_hold(predicates: tuple[tuple[str, object], ...], inputs: Inputs) -> bool:
    return all(PREDICATES[name][0](inputs, parameter) for name, parameter in predicates)
