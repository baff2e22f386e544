"""The canonical ops, registered from the op families, and their evaluation with options.

One table, read by the case validator (which ops and options exist), the adapters (which
variant each framework follows) and the checks (what to expect, how much rounding to allow).
"""
import inspect
from collections.abc import Iterable
from functools import lru_cache
from types import ModuleType
from typing import Any, Callable, Mapping

import numpy as np
import numpy.typing as npt

from reference import linear
from reference import options as pipeline
from reference.declaration import NotDescribed, Op, Variant
from reference.ops import FAMILIES
from reference.options import REDUCTIONS, SHARED_OPTIONS

__all__ = ["OPS", "REDUCTIONS", "SHARED_OPTIONS", "NotDescribed", "Op", "Variant", "evaluate_grad", "evaluate_loss",
           "evaluate_loss_and_scale", "evaluate_scale", "has_grad", "variant_names"]


def _register(families: Iterable[ModuleType]) -> dict[str, Op]:
    ops: dict[str, Op] = {}
    for family in families:
        for op in family.DECLARATIONS:
            if op.name in ops:
                raise ValueError(f"op {op.name!r} is declared twice")
            ops[op.name] = op
    for op in ops.values():
        if op.head is not None:
            head = ops.get(op.head)
            if head is None or head.head is not None:
                raise ValueError(f"{op.name}: its head {op.head!r} must be a declared op on logits")
            op.variants.update(head.variants)  # evaluated through its own module, on the head's
    for op in ops.values():
        if op.dense_form is None:
            continue
        dense = ops.get(op.dense_form)
        if dense is None or dense.integer_labels or not set(op.variants) <= set(dense.variants):
            raise ValueError(f"{op.name}: its dense form {op.dense_form!r} must be a declared op with soft "
                             f"labels and the variants {sorted(op.variants)}")
    return ops


OPS: dict[str, Op] = _register((*FAMILIES, linear))


def variant_names(op: str) -> tuple[str, ...]:
    return tuple(_op(op).variants)


def has_grad(op: str, variant: str, quantity: str = "grad_logits") -> bool:
    """Whether the reference differentiates the variant: grad_logits (with respect to the
    prediction), grad_labels, or (an op with further tensors) grad_<tensor>."""
    declared = _op(op)
    spec = _variant(declared, variant)
    if quantity.startswith("grad_") and quantity[len("grad_"):] in declared.tensors:
        return spec.grad is not None
    return (spec.grad if quantity == "grad_logits" else spec.grad_labels) is not None


def _linear(op: Op, variant: "str | Variant", inputs: Mapping[str, npt.ArrayLike], options: Mapping[str, Any],
            dtype: str) -> linear.Linear:
    """An op with a head, evaluated by its own module, as its head's variant computes the loss
    on the logits (a model of arithmetic, a Variant itself, is not evaluated on a head)."""
    if isinstance(variant, Variant):
        raise ValueError(f"{op.name} evaluates its head's named variants only")
    _variant(op, variant)
    _check_options(op, options)
    return linear.evaluate(inputs[op.prediction], inputs["linear_weight"], inputs.get("linear_bias"),
                           inputs["labels"], options, dtype, variant)


def _op(name: str) -> Op:
    if name not in OPS:
        raise ValueError(f"unknown op {name!r} (known: {', '.join(OPS)})")
    return OPS[name]


def _variant(op: Op, name: str) -> Variant:
    if name not in op.variants:
        raise ValueError(f"{op.name} has no variant {name!r} (known: {', '.join(op.variants)})")
    return op.variants[name]


def _check_options(op: Op, options: Mapping[str, Any]) -> None:
    """An option the op does not declare is an error, not silently dropped (None means unset)."""
    for name, value in options.items():
        if value is not None and name not in op.options and name not in SHARED_OPTIONS:
            accepted = ", ".join([*op.options, *SHARED_OPTIONS])
            raise ValueError(f"{op.name} does not take the option {name!r} (it takes: {accepted})")


def in_uniform_terms(op: Op, variant: "str | Variant", prediction: npt.ArrayLike,
                     options: Mapping[str, Any]) -> Mapping[str, Any]:
    """The options with label_smoothing as the uniform convention (eps / K on every class)
    states the variant's: eps K / (K - 1) for "other_classes"."""
    spec = variant if isinstance(variant, Variant) else _variant(op, variant)
    eps = float(options.get("label_smoothing") or 0.0)
    if spec.smoothing == "uniform" or not eps:
        return options
    classes = np.shape(prediction)[options.get("axis", -1)] if op.class_axis else 2
    return {**options, "label_smoothing": eps * classes / (classes - 1)}


def _setup(op_name: str, variant: "str | Variant", inputs: Mapping[str, npt.ArrayLike], options: Mapping[str, Any]
           ) -> tuple[np.ndarray, pipeline.Prepared, Variant, dict[str, Any], Mapping[str, Any]]:
    """(prediction, prepared labels and weights, the variant to call, its function options,
    the options in the uniform smoothing convention)."""
    op = _op(op_name)
    if not isinstance(variant, Variant):  # a Variant itself: a model of a framework's arithmetic
        _variant(op, variant)
    _check_options(op, options)
    options = in_uniform_terms(op, variant, inputs[op.prediction], options)
    prediction = np.asarray(inputs[op.prediction], np.float64)
    labels = np.asarray(inputs["labels"], np.int64 if op.integer_labels else np.float64)
    prepared = pipeline.prepare(op, prediction, labels, options)
    prediction = prepared.prediction
    evaluated = op
    if prepared.dense:  # its dense form has the same variant names (checked above)
        assert op.dense_form is not None  # Op requires one where smoothing or class weights make labels dense
        evaluated = OPS[op.dense_form]
    function_options = {k: options.get(k, evaluated.options[k].default) for k in evaluated.function_options}
    spec = variant if isinstance(variant, Variant) else evaluated.variants[variant]
    return prediction, prepared, spec, function_options, options


@lru_cache(maxsize=None)
def _parameters(function: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword parameters a function names; None where it takes any (**options)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters)


def _taken(function: Callable[..., Any], op: Op, variant: "str | Variant",
           function_options: Mapping[str, Any]) -> dict[str, Any]:
    """The options the function takes: each function receives only those it uses. One that it
    does not take but that is given (not its default) is not described by it: NotDescribed."""
    names = _parameters(function)
    if names is None:
        return dict(function_options)
    for name, value in function_options.items():
        declared = op.options.get(name)
        if name not in names and not (declared.is_unset(value) if declared else value is None):
            which = f"variant {variant!r}" if isinstance(variant, str) else getattr(function, "__name__", "model")
            raise NotDescribed(f"{op.name} {which} does not take the option {name} (given {value!r})")
    return {name: value for name, value in function_options.items() if name in names}


def evaluate_loss(op: str, variant: "str | Variant", inputs: Mapping[str, npt.ArrayLike], options: Mapping[str, Any],
                  dtype: str) -> np.ndarray:
    """The loss in float64, reduced as options['reduction'] says."""
    if _op(op).head:
        return _linear(OPS[op], variant, inputs, options, dtype).loss
    prediction, prepared, spec, function_options, _ = _setup(op, variant, inputs, options)
    loss = spec.loss(prediction, prepared.labels, dtype, **_taken(spec.loss, OPS[op], variant, function_options))
    return np.asarray(pipeline.reduce_loss(loss, options.get("reduction", "none"), prepared))


def evaluate_scale(op: str, variant: "str | Variant", inputs: Mapping[str, npt.ArrayLike], options: Mapping[str, Any],
                   dtype: str) -> np.ndarray:
    """The conditioning scale of evaluate_loss, same shape."""
    return evaluate_loss_and_scale(op, variant, inputs, options, dtype)[1]


def evaluate_loss_and_scale(op: str, variant: "str | Variant", inputs: Mapping[str, npt.ArrayLike],
                            options: Mapping[str, Any], dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(evaluate_loss, evaluate_scale), the same values, from one pass over the logits where
    the variant offers one (the softmax ops: a loss check's reference at half the cost of the
    two calls)."""
    if _op(op).head:
        evaluated = _linear(OPS[op], variant, inputs, options, dtype)
        return evaluated.loss, evaluated.loss_scale
    prediction, prepared, spec, function_options, _ = _setup(op, variant, inputs, options)
    def taken(function: Callable[..., Any]) -> dict[str, Any]:
        return _taken(function, OPS[op], variant, function_options)

    if spec.loss_and_scale is not None:  # one pass over the logits (the softmax ops' fast tier)
        loss, scale = spec.loss_and_scale(prediction, prepared.labels, dtype, **taken(spec.loss_and_scale))
    else:
        loss = spec.loss(prediction, prepared.labels, dtype, **taken(spec.loss))
        scale = spec.scale(prediction, prepared.labels, loss, dtype, **taken(spec.scale))
    reduction = options.get("reduction", "none")
    return (np.asarray(pipeline.reduce_loss(loss, reduction, prepared)),
            np.asarray(pipeline.reduce_scale(scale, loss, reduction, prepared)))


def evaluate_grad(op: str, variant: "str | Variant", inputs: Mapping[str, npt.ArrayLike], options: Mapping[str, Any],
                  dtype: str, wrt: str = "prediction") -> tuple[np.ndarray, np.ndarray]:
    """d sum(reduce(L)) / d prediction (or / d labels), and its conditioning scale.

    reduction none is differentiated as sum(L); a mean divides by its denominator (the count
    of unreduced losses, or the sum of the examples' weights). For the labels, the options'
    label transform y -> (y (1 - s) + s / K) w contributes its factor (1 - s) w.
    """
    if _op(op).head and wrt in ("prediction", *OPS[op].tensors):
        evaluated = _linear(OPS[op], variant, inputs, options, dtype)
        field = linear.GRADIENTS[OPS[op].prediction if wrt == "prediction" else wrt]
        return getattr(evaluated, field), getattr(evaluated, field + "_scale")
    allowed = ("prediction", *OPS[op].tensors) if OPS[op].head else ("prediction", "labels")
    if wrt not in allowed:
        raise ValueError(f"wrt must be one of {', '.join(allowed)} for {op}, got {wrt!r}")
    prediction, prepared, spec, function_options, options = _setup(op, variant, inputs, options)
    function = spec.grad if wrt == "prediction" else spec.grad_labels
    if function is None:
        raise ValueError(f"{op} variant {variant!r} has no gradient with respect to the {wrt}")
    grad, scale = function(prediction, prepared.labels, dtype, **_taken(function, OPS[op], variant, function_options))
    # The factors below are applied in place where the variant handed back arrays of its own
    # (a gradient as large as the logits is not copied once per factor); else as new arrays.
    own = [_own(array, prediction, prepared.labels) for array in (grad, scale)]
    own = [each and not np.may_share_memory(grad, scale) for each in own]
    if wrt == "labels":
        factor = pipeline.label_factor(prediction, options)
        grad, scale = _times(grad, factor, own[0]), _times(scale, np.abs(factor), own[1])
    axis = options.get("axis", -1) if OPS[op].class_axis else None
    weights = prepared.example_weights
    if weights is not None:  # pipeline.per_example
        grad, scale = (_times(array, np.expand_dims(weights, axis) if axis is not None and np.ndim(array) > np.ndim(
            weights) else weights, in_place) for array, in_place in zip((grad, scale), own))
    if options.get("reduction", "none") in ("mean", "weighted_mean"):
        denominator = np.float64(pipeline.grad_denominator(prediction, axis, prepared))
        with np.errstate(divide="ignore", invalid="ignore"):
            grad, scale = _divided(grad, denominator, own[0]), _divided(scale, denominator, own[1])
    return grad, scale


def _own(array: object, *inputs: npt.ArrayLike) -> bool:
    """Whether array is a writeable float64 array sharing no memory with the inputs."""
    return (isinstance(array, np.ndarray) and array.dtype == np.float64 and array.flags.writeable
            and not any(np.may_share_memory(array, other) for other in inputs))


def _times(array: np.ndarray, factor: np.ndarray | float, in_place: bool) -> np.ndarray:
    """array * factor, in array where it is the variant's own and keeps its shape."""
    if in_place and np.broadcast_shapes(np.shape(array), np.shape(factor)) == array.shape:
        return np.multiply(array, factor, out=array)
    return array * factor


def _divided(array: np.ndarray, denominator: np.float64, in_place: bool) -> np.ndarray:

    """array / denominator, in array where it is the variant's own."""
    if in_place:
        return np.divide(array, denominator, out=array)
    return array / denominator
