"""Values a source printed (`pinned`): a number or an array, of the loss or of a gradient,
with the precision it was printed to."""
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.cases import schema
from conformance.cases.keys import Fail, check_keys, literal_array
from conformance.core import quantities
from reference.declaration import Op
from reference.dtypes import FLOAT_DTYPES


@dataclass(frozen=True)
class Pinned:
    value: float | tuple[float, ...]  # a number, or an array's elements in row-major order (shape below)
    dtype: str
    variant: str
    source: str
    digits: int | None = None  # significant digits printed: reproduced when rounding or truncating gives value
    quantity: str = "loss"  # or another that quantities.py marks pinnable
    shape: tuple[int, ...] | None = None  # an array's shape; None for a number (which stands for every element)
    decimals: int | None = None  # decimal places printed (instead of digits)
    inexact: str = ""  # why the number is known to be wrong beyond its digits: no framework is held to it
    rel: float | None = None  # the source's own tolerance, |x - value| <= abs + rel |value| (instead of digits)
    abs: float | None = None

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.value, np.float64) if self.shape is None else np.array(self.value).reshape(self.shape)

    @property
    def printed(self) -> str:
        """How precisely the source printed it, for messages ('' when taken as exact)."""
        if self.digits:
            return f" to {self.digits} digits"
        if self.rel is not None or self.abs is not None:
            return f" within rel {self.rel or 0:g} and abs {self.abs or 0:g}"
        return f" to {self.decimals} decimals" if self.decimals is not None else ""

    def within(self) -> np.ndarray | None:
        """The half-width the source's own tolerance allows around each value (rel, abs), or
        None when the source gave none."""
        if self.rel is None and self.abs is None:
            return None
        return (self.abs or 0.0) + (self.rel or 0.0) * np.abs(self.values)


def check_printed(value: float, digits: int, fail: Fail, key: str) -> None:
    """A printed number says how many digits it has; one that has more than `digits` was not
    printed to that precision (an infinite or zero value has no digits to count)."""
    if not 1 <= digits <= schema.MAX_PRINTED_DIGITS:
        fail(f"expected 1 to {schema.MAX_PRINTED_DIGITS} significant digits, got {digits}", key + ".digits")
    if not math.isfinite(value) or value == 0:
        fail(f"{value!r} has no significant digits to count; leave digits out", key + ".digits")
    if float(f"{value:.{digits}g}") != value:
        fail(f"{value!r} has more than {digits} significant digits", key + ".digits")


def parse(entry: object, key: str, op: Op, arrays: Mapping[str, np.ndarray], options: Mapping[str, Any], grad: bool,
          fail: Fail) -> Pinned:
    """One value a source printed: a number or an array, of the loss or of a gradient."""
    if not isinstance(entry, dict):
        fail("expected a mapping with value, dtype, variant, source", key)
    check_keys(entry, schema.PINNED_KEYS, fail, key + ".")
    if entry["dtype"] not in FLOAT_DTYPES:
        fail(f"unknown dtype {entry['dtype']!r}", key + ".dtype")
    if entry["variant"] not in op.variants:
        fail(f"unknown variant {entry['variant']!r} for {op.name} (known: {', '.join(op.variants)})", key + ".variant")
    if not entry["source"].strip():
        fail("a pinned number must name its source", key + ".source")
    quantity = entry.get("quantity", "loss")
    if quantity not in schema.PINNED_QUANTITIES:
        fail(f"unknown quantity {quantity!r} (known: {', '.join(schema.PINNED_QUANTITIES)})", key + ".quantity")
    gradient = quantities.quantity(quantity).gradient
    field = "grad_labels" if gradient == "grad_labels" else "grad"  # the variant's derivative of that gradient
    if gradient and (not grad or getattr(op.variants[entry["variant"]], field) is None):
        fail(f"the {entry['variant']} variant has no {quantity} here (or the case sets grad: false)", key + ".quantity")
    value, shape = entry["value"], None
    if isinstance(value, list):
        array = literal_array(value, fail, key + ".value")
        expected = pinned_shape(op, arrays, options, quantity)
        if array.shape != expected:
            fail(f"has shape {list(array.shape)}, but the {quantity} of this case has shape {list(expected)}",
                 key + ".value")
        value, shape = tuple(array.ravel().tolist()), array.shape
    digits, decimals = entry.get("digits"), entry.get("decimals")
    if digits is not None and decimals is not None:
        fail("give digits or decimals, not both", key + ".decimals")
    rel, absolute = _source_tolerance(entry, digits is not None or decimals is not None, fail, key)
    for element in (value if shape is not None else (value,)):
        if digits is not None and not (shape is not None and element == 0):
            check_printed(element, digits, fail, key)
        if decimals is not None:
            _check_decimals(element, decimals, fail, key)
    inexact = entry.get("inexact", "")
    if "inexact" in entry and not str(inexact).strip():
        fail("say why the source's number is wrong beyond its digits", key + ".inexact")
    return Pinned(value if shape is not None else float(value), entry["dtype"], entry["variant"], entry["source"],
                  digits, quantity, shape, decimals, str(inexact).strip(), rel, absolute)


def _source_tolerance(entry: Mapping[str, Any], printed: bool, fail: Fail,
                      key: str) -> tuple[float | None, float | None]:
    """(rel, abs) of `rel:`/`abs:`, the source's own tolerance: non-negative numbers, one of
    them positive, and not beside digits or decimals (one precision per number)."""
    given = {name: entry[name] for name in ("rel", "abs") if name in entry}
    if not given:
        return None, None
    for name, value in given.items():
        if not 0 <= value < math.inf:  # a number already (check_keys)
            fail(f"expected a non-negative number, got {value!r}", f"{key}.{name}")
    if not any(given.values()):
        fail("a tolerance of 0 is an exact number: leave rel and abs out", f"{key}.{next(iter(given))}")
    if printed:
        fail("give digits, decimals or rel/abs, one precision", f"{key}.{next(iter(given))}")
    return (float(given["rel"]) if "rel" in given else None), (float(given["abs"]) if "abs" in given else None)


def pinned_shape(op: Op, arrays: Mapping[str, np.ndarray], options: Mapping[str, Any],
                 quantity: str) -> tuple[int, ...]:
    """The shape of a case's quantity: the unreduced loss drops the class axis (or broadcasts
    an elementwise op's inputs); a reduced loss is a number; a gradient has its input's shape."""
    wrt = quantities.quantity(quantity).wrt
    if wrt is not None:  # a gradient: its input's shape
        return arrays[op.prediction if wrt == "prediction" else wrt].shape
    prediction, labels = arrays[op.prediction], arrays["labels"]
    if options.get("reduction", "none") != "none":
        return ()
    if op.class_axis:
        return tuple(int(n) for n in np.delete(prediction.shape, options.get("axis", -1)))
    return tuple(np.broadcast_shapes(prediction.shape, labels.shape))


def _check_decimals(value: float, decimals: int, fail: Fail, key: str) -> None:
    if not 0 <= decimals <= schema.MAX_PRINTED_DECIMALS:
        fail(f"expected 0 to {schema.MAX_PRINTED_DECIMALS} decimal places, got {decimals}", key + ".decimals")
    if not math.isfinite(value) or float(f"{value:.{decimals}f}") != value:
        fail(f"{value!r} has more than {decimals} decimal places", key + ".decimals")
