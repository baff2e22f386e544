"""A case's options checked against the declarations of the options its op takes
(reference/option_declaration.py): each kind of value has one check here, so an op's new
option is checked as soon as it is declared. Every refusal names the key, `options.<name>`.
"""
from typing import Callable, Mapping, TypeGuard

import numpy as np

from conformance.cases.keys import Fail, type_ok
from reference.declaration import Op
from reference.option_declaration import Option
from reference.options import SHARED_OPTIONS

ReadArray = Callable[[object, Fail, str], np.ndarray]


def declared(op: Op) -> dict[str, Option]:
    """The options a case of the op may give: its own, then those every op takes."""
    return {**op.options, **SHARED_OPTIONS}


def check_names(op: Op, options: Mapping[str, object], fail: Fail) -> None:
    allowed = declared(op)
    for key in options:
        if key not in allowed:
            fail(f"unknown option for {op.name} (allowed: {', '.join(allowed)})", "options." + key)


def check_options(op: Op, checked_as: Op, options: Mapping[str, object], prediction: np.ndarray, fail: Fail,
                  read_array: ReadArray) -> None:
    """Names, then values, then what one value needs of another. checked_as is the op whose
    prediction `prediction` is (an op with a head: its head, on the logits it computes)."""
    check_names(op, options, fail)
    allowed = declared(op)
    given = [allowed[name] for name in options]
    # An axis first: the per-class and per-loss checks count along it.
    for option in sorted(given, key=lambda option: option.kind != "axis"):
        value = options[option.name]
        if option.nullable and value is None:
            continue
        message = CHECKS[option.kind](option, value, _Context(checked_as, options, prediction, fail, read_array))
        if message:
            fail(message, "options." + option.name)
    for option in given:
        for value, other, why in option.needs:
            if options[option.name] == value and other not in options:
                fail(f"{value} {why}, which is missing", "options." + option.name)


class _Context:
    """What a value is checked against: the op's prediction and the case's other options."""

    def __init__(self, op: Op, options: Mapping[str, object], prediction: np.ndarray, fail: Fail,
                 read_array: ReadArray) -> None:
        self.op, self.options, self.prediction, self.fail, self.read_array = op, options, prediction, fail, read_array

    @property
    def axis(self) -> int:
        axis = self.options.get("axis", -1)
        return axis if isinstance(axis, int) else -1  # a bad axis is refused before it is read

    def classes(self, axis: int) -> int:
        return self.prediction.shape[axis] if self.prediction.ndim else 0


def _is_number(value: object) -> TypeGuard[float]:
    return type_ok("number", value)


def _is_integer(value: object) -> TypeGuard[int]:
    return type_ok("int", value)


def _number(option: Option, value: object, _: _Context) -> str | None:
    if _is_number(value) and option.number_in_range(value):
        return None
    return f"{option.name} must be {option.number_phrase()}, got {value!r}"


def _integer(option: Option, value: object, _: _Context) -> str | None:
    return None if _is_integer(value) else f"{option.name} must be an integer, got {value!r}"


def _boolean(option: Option, value: object, _: _Context) -> str | None:
    return None if isinstance(value, bool) else f"{option.name} must be true or false"


def _choice(option: Option, value: object, _: _Context) -> str | None:
    if value in option.choices:
        return None
    return f"{option.name} must be one of {', '.join(map(str, option.choices))}, got {value!r}"


def _axis(option: Option, value: object, at: _Context) -> str | None:
    ndim = at.prediction.ndim
    if _is_integer(value) and -ndim <= value < max(ndim, 1):
        return None
    return f"{option.name} {value!r} is not an axis of the {ndim}-d {at.op.prediction}"


def _per_class(option: Option, value: object, at: _Context) -> str | None:
    classes = at.classes(at.axis)
    if isinstance(value, list) and len(value) == classes and all(_is_number(v) for v in value):
        return None
    return f"{option.name} must be a list of {classes} numbers, one per class"


def _number_or_per_class(option: Option, value: object, at: _Context) -> str | None:
    classes = at.classes(-1)  # broadcast on the last axis
    values = value if isinstance(value, list) else [value]
    if (values and all(_is_number(v) and option.number_in_range(v) for v in values)
            and (not isinstance(value, list) or len(value) == classes)):
        return None
    return f"{option.name} must be {option.number_phrase()} or a list of {classes} (one per class), got {value!r}"


def _per_loss(option: Option, value: object, at: _Context) -> str | None:
    key = "options." + option.name
    expected = at.prediction.shape
    if at.op.class_axis and at.prediction.ndim:
        expected = tuple(int(n) for n in np.delete(at.prediction.shape, at.axis))
    weights = at.read_array(value, at.fail, key)
    if weights.shape != expected:
        return f"{option.name} has shape {weights.shape}; one weight per loss is {expected}"
    return None


# kind -> its check: None where the value is good, else the refusal
CHECKS: dict[str, Callable[[Option, object, _Context], str | None]] = {
    "number": _number, "integer": _integer, "boolean": _boolean, "choice": _choice, "axis": _axis,
    "per_class": _per_class, "number_or_per_class": _number_or_per_class, "per_loss": _per_loss,
}
