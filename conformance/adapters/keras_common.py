"""What Keras 3 and tf-keras share: the same loss names, per-sample outputs and loss classes.

Keras' functional binary losses average over the last axis. To compare them element by
element, as the canonical ops are defined, elementwise inputs get a trailing axis of size 1:
the mean over it is exact, so the framework's own values come back unchanged.
"""
from conformance.adapters.base import Adapter, NotOffered

ELEMENTWISE = {"sigmoid_cross_entropy", "binary_crossentropy", "mean_squared_error"}

# canonical op -> (functional name, loss class name, from_logits)
KERAS_NAMES = {
    "sigmoid_cross_entropy": ("binary_crossentropy", "BinaryCrossentropy", True),
    "binary_crossentropy": ("binary_crossentropy", "BinaryCrossentropy", False),
    "softmax_cross_entropy": ("categorical_crossentropy", "CategoricalCrossentropy", True),
    "categorical_crossentropy": ("categorical_crossentropy", "CategoricalCrossentropy", False),
    "sparse_softmax_cross_entropy": ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", True),
    "sparse_categorical_crossentropy": ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", False),
    "mean_squared_error": ("mean_squared_error", "MeanSquaredError", None),
}


class KerasStyleAdapter(Adapter):
    losses = None  # the keras.losses module of this Keras
    offered_options = {
        "sigmoid_cross_entropy": ("label_smoothing",),
        "binary_crossentropy": ("label_smoothing",),
        "softmax_cross_entropy": ("label_smoothing",),
        "categorical_crossentropy": ("label_smoothing",),
        "sparse_softmax_cross_entropy": ("ignore_index",),
        "sparse_categorical_crossentropy": ("ignore_index",),
    }
    offered_options = {op: names + ("sample_weight",) for op, names in offered_options.items()}
    offered_options["mean_squared_error"] = ("sample_weight",)

    def reduction_argument(self, reduction):
        raise NotImplementedError

    def class_kwargs(self, dtype):
        return {}

    def function(self, op, y, options, dtype, expand):
        """x -> the loss as the Keras user calls it: functional for none, the loss class to reduce."""
        if options.get("half"):
            raise NotOffered("Keras has no 1/2 (a - y)^2 loss")
        functional, class_name, from_logits = KERAS_NAMES[op]
        reduction = options.get("reduction", "none")
        axis = options.get("axis", -1)
        elementwise = op in ELEMENTWISE
        kwargs = {} if from_logits is None else {"from_logits": from_logits}
        if op in ("softmax_cross_entropy", "categorical_crossentropy") and axis != -1:
            kwargs["axis"] = axis
        if options.get("label_smoothing"):
            kwargs["label_smoothing"] = options["label_smoothing"]
        if options.get("ignore_index") is not None:
            kwargs["ignore_class"] = options["ignore_index"]
        if elementwise:
            y = expand(y)

        sample_weight = options.get("sample_weight")
        weights = {} if sample_weight is None else {"sample_weight": self.constant(sample_weight, dtype)}

        def fn(x):
            if elementwise:
                x = expand(x)
            if reduction == "none" and not weights:
                return getattr(self.losses, functional)(y, x, **kwargs)
            loss = getattr(self.losses, class_name)(
                reduction=self.reduction_argument(reduction), **kwargs, **self.class_kwargs(dtype))
            return loss(y, x, **weights)

        return fn
