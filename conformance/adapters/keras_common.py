"""What Keras 3 and tf-keras share: the same loss names, per-sample outputs and loss classes.

Keras' functional binary losses average over the last axis. To compare them element by
element, as the canonical ops are defined, elementwise inputs get a trailing axis of size 1:
the mean over it is exact, so the framework's own values come back unchanged.
"""
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from conformance.adapters.api import BASIC_REDUCTIONS, Adapter, Capability, NotOffered
from reference.dtypes import FLOAT_DTYPES


@dataclass(frozen=True)
class KerasLoss:
    """A Keras loss as the user calls it: the function for per-sample losses, the class to reduce."""

    functional: str
    class_name: str
    from_logits: bool | None  # None: the loss takes no from_logits argument
    elementwise: bool  # no class axis: inputs get a trailing axis of size 1
    class_axis_argument: bool = False  # takes axis= (the categorical losses, dense and sparse)


KERAS_LOSSES = {
    "sigmoid_cross_entropy": KerasLoss("binary_crossentropy", "BinaryCrossentropy", True, True),
    "binary_crossentropy": KerasLoss("binary_crossentropy", "BinaryCrossentropy", False, True),
    "softmax_cross_entropy": KerasLoss("categorical_crossentropy", "CategoricalCrossentropy", True, False, True),
    "categorical_crossentropy": KerasLoss("categorical_crossentropy", "CategoricalCrossentropy", False, False, True),
    "sparse_softmax_cross_entropy": KerasLoss("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
                                              True, False, True),
    "sparse_categorical_crossentropy": KerasLoss("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy",
                                                 False, False, True),
    "mean_squared_error": KerasLoss("mean_squared_error", "MeanSquaredError", None, True),
}
KERAS_OPTIONS = {  # beyond reduction and axis; none offers the article's 1/2 (a - y)^2
    "sigmoid_cross_entropy": {"label_smoothing", "sample_weight"},
    "binary_crossentropy": {"label_smoothing", "sample_weight"},
    "softmax_cross_entropy": {"label_smoothing", "sample_weight"},
    "categorical_crossentropy": {"label_smoothing", "sample_weight"},
    "sparse_softmax_cross_entropy": {"ignore_index", "sample_weight"},
    "sparse_categorical_crossentropy": {"ignore_index", "sample_weight"},
    "mean_squared_error": {"sample_weight"},
}


def keras_capabilities(variants, reductions=BASIC_REDUCTIONS, dtypes=FLOAT_DTYPES, modes=("eager",),
                       differentiable=True):
    """One Capability per canonical op Keras offers, following `variants` (op -> variant)."""
    return {op: Capability(loss, variant=variants[op], options=KERAS_OPTIONS[op], reductions=reductions,
                           dtypes=dtypes, modes=modes, differentiable=differentiable)
            for op, loss in KERAS_LOSSES.items()}


class KerasStyleAdapter(Adapter):
    losses = None  # the keras.losses module of this Keras
    classes_without_axis: tuple = ()  # loss classes whose constructor takes no axis= (their functions do)

    def reduction_argument(self, reduction):
        raise NotImplementedError

    def class_kwargs(self, dtype):
        return {}

    def constant(self, values, dtype):
        raise NotImplementedError

    def function(self, op: str, y: Any, options: Mapping[str, Any], dtype: str,
                 expand: Callable[[Any], Any]) -> Callable:
        """x -> the loss as the Keras user calls it: functional for none, the loss class to reduce."""
        loss: KerasLoss = self.capability(op).implementation
        reduction = options.get("reduction", "none")
        kwargs = {} if loss.from_logits is None else {"from_logits": loss.from_logits}
        if loss.class_axis_argument and options.get("axis", -1) != -1:
            kwargs["axis"] = options["axis"]
        if options.get("label_smoothing"):
            kwargs["label_smoothing"] = options["label_smoothing"]
        if options.get("ignore_index") is not None:
            kwargs["ignore_class"] = options["ignore_index"]
        if loss.elementwise:
            y = expand(y)

        sample_weight = options.get("sample_weight")
        weights = {} if sample_weight is None else {"sample_weight": self.constant(sample_weight, dtype)}

        if (reduction != "none" or weights) and "axis" in kwargs and loss.class_name in self.classes_without_axis:
            raise NotOffered(f"{self.framework}'s {loss.class_name} takes no axis (its function does)")

        def fn(x):
            if loss.elementwise:
                x = expand(x)
            if reduction == "none" and not weights:
                return getattr(self.losses, loss.functional)(y, x, **kwargs)
            instance = getattr(self.losses, loss.class_name)(
                reduction=self.reduction_argument(reduction), **kwargs, **self.class_kwargs(dtype))
            return instance(y, x, **weights)

        return fn
