"""How an op and its semantic variants are declared: by keyword, checked when declared.

A variant's functions take (prediction, labels, dtype, then the function options they use),
the scale also the unreduced loss before dtype. The function options are the op's declared
options that the option pipeline does not apply around the functions (axis, half, pos_weight).
The exact variant's functions take every one of them (the mathematics defines each); another
variant's take those it describes, and is not evaluated with another one given.
"""
import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

from reference.option_declaration import Option, by_name
from reference.options import PIPELINE_OPTIONS

PREDICTIONS = ("logits", "probs", "predictions", "hidden")


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One way of computing an op: the mathematics ("exact") or what a framework computes."""
    loss: Callable  # (prediction, labels, dtype, **options) -> unreduced float64 loss
    scale: Callable  # (prediction, labels, loss, dtype, **options) -> its conditioning scale
    grad: Callable | None = None  # (prediction, labels, dtype, **options) -> (d loss / d prediction, scale)
    grad_labels: Callable | None = None  # same arguments -> (d loss / d labels, its scale)
    # Optional: (prediction, labels, dtype, **options) -> (loss, scale) from one pass, the same
    # values as loss and scale give (evaluate_scale uses it where given).
    loss_and_scale: Callable | None = None
    # How label_smoothing = eps spreads over K classes: "uniform", eps / K on every class
    # (PyTorch, Keras, optax, Liger); "other_classes", the label keeps 1 - eps and each other
    # class gets eps / (K - 1) (Megatron-LM, NeMo: eps K / (K - 1) in uniform terms).
    smoothing: str = "uniform"

    def __post_init__(self) -> None:
        if self.smoothing not in ("uniform", "other_classes"):
            raise ValueError(f"smoothing must be 'uniform' or 'other_classes', got {self.smoothing!r}")


class NotDescribed(ValueError):
    """The variant does not describe what it was asked for: an option given that its functions
    do not take (a model of a framework's arithmetic raises it too, for inputs it does not model)."""


# How many leading positional arguments each function takes before the function options.
_POSITIONAL = {"loss": 3, "scale": 4, "grad": 3, "grad_labels": 3, "loss_and_scale": 3}


@dataclass(frozen=True, kw_only=True)
class Op:
    name: str
    prediction: str  # the input that is differentiated: logits, probs or predictions
    integer_labels: bool
    class_axis: bool  # the loss sums over a class axis (given by the `axis` option)
    options: Mapping[str, Option]  # name -> declaration: taking(REDUCTION, AXIS, ...)
    variants: dict[str, Variant] = field(default_factory=dict)
    # The op that evaluates this one once its integer labels are made dense (one-hot), which
    # label smoothing and class weights need; it has this op's variants.
    dense_form: str | None = None
    # Inputs whose values are probabilities of one event, defined on [0, 1]: an example with a
    # value outside has no loss (NaN). Ops with a class axis declare none: their loss is linear
    # in the label weights (the article's labels [1, 2]) and Keras normalises predicted rows.
    unit_interval: tuple[str, ...] = ()
    # An op on logits it computes from its inputs (linear_cross_entropy: hidden @ linear_weight.T
    # + linear_bias), then evaluated as the op `head`: its own module is its reference, and it
    # follows the mathematics only (the registry gives it the head's exact variant).
    head: str | None = None
    tensors: tuple[str, ...] = ()  # its further inputs, differentiated too
    optional_tensors: tuple[str, ...] = ()  # those of them a case may leave out

    def __post_init__(self) -> None:
        if not isinstance(self.options, Mapping) or list(by_name(self.options.values())) != list(self.options):
            raise TypeError(f"{self.name}: options=taking(<Option>, ...), the declarations of reference/options.py "
                            "and of the op's module")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"{self.name}: prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if "reduction" not in self.options:
            raise ValueError(f"{self.name}: every op takes the option 'reduction'")
        if self.head is not None:
            if self.variants or self.class_axis or not self.integer_labels:
                raise ValueError(f"{self.name}: an op with a head declares no variants, no class axis, and "
                                 "takes integer labels (the head's classes are its computed logits')")
            if not set(self.optional_tensors) <= set(self.tensors):
                raise ValueError(f"{self.name}: optional_tensors must be among its tensors")
            return
        if self.tensors:
            raise ValueError(f"{self.name}: only an op with a head takes further tensors")
        if "exact" not in self.variants:
            raise ValueError(f"{self.name}: every op has an 'exact' variant")
        if self.class_axis != ("axis" in self.options):
            raise ValueError(f"{self.name}: an op with a class axis takes the option 'axis', and only such an op")
        needs_dense = self.integer_labels and ({"label_smoothing", "weight"} & set(self.options))
        if needs_dense and self.dense_form is None:
            raise ValueError(f"{self.name}: label smoothing or class weights on integer labels need a dense_form")
        if not set(self.unit_interval) <= {self.prediction, "labels"}:
            raise ValueError(f"{self.name}: unit_interval names inputs the op does not take: {self.unit_interval}")
        for variant_name, variant in self.variants.items():
            for role, positional in _POSITIONAL.items():
                function = getattr(variant, role)
                if function is not None:
                    self._check_signature(f"{variant_name}.{role}", function, positional, variant_name == "exact")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of its inputs in a case: the prediction, further tensors, the labels."""
        return (self.prediction, *self.tensors, "labels")

    @property
    def function_options(self) -> tuple[str, ...]:
        """The declared options that the variants' own functions take."""
        return tuple(name for name in self.options if name not in PIPELINE_OPTIONS)

    def _check_signature(self, where: str, function: Callable, positional: int, every: bool) -> None:
        taken = list(inspect.signature(function).parameters)[positional:]
        unknown = sorted(set(taken) - set(self.function_options))
        if unknown or (every and sorted(taken) != sorted(self.function_options)):
            every_one = "" if unknown else " (its exact variant takes every one)"
            raise ValueError(f"{self.name} {where} takes the options {taken}, but the op declares "
                             f"{list(self.function_options)}{every_one}")
