"""Checks shared by every part of a case file: key sets, value types, literal arrays."""
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import numpy as np

# fail(message, key): raises the error of the file being read, naming the key.
Fail = Callable[[str, str], NoReturn]


def type_ok(kind: str, value: object) -> bool:
    if kind == "number_or_list":
        return type_ok("number", value) or isinstance(value, list)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "list": list, "mapping": dict}[kind])


def check_keys(mapping: Mapping[Any, object], keys: Mapping[str, tuple[str, bool, str]], fail: Fail,
               prefix: str = "") -> None:
    for key in mapping:
        if key not in keys:
            fail(f"unknown key (allowed: {', '.join(keys)})", prefix + str(key))
    for key, (kind, required, _) in keys.items():
        if key not in mapping:
            if required:
                fail(f"missing required key ({keys[key][2]})", prefix + key)
            continue
        if not type_ok(kind, mapping[key]):
            fail(f"expected {kind}, got {type(mapping[key]).__name__} {mapping[key]!r}", prefix + key)


def literal_array(value: object, fail: Fail, key: str) -> np.ndarray:
    """A nested list of numbers that is rectangular, as a float64 array."""

    def shape_of(item: object, where: str) -> tuple[int, ...]:
        if isinstance(item, list):
            shapes = {shape_of(x, f"{where}[{i}]") for i, x in enumerate(item)}
            if len(shapes) > 1:
                fail(f"ragged array at {where}: rows of different lengths", key)
            return (len(item),) + (shapes.pop() if shapes else ())
        if not type_ok("number", item):
            fail(f"array element {where} is {item!r}, not a number", key)
        return ()

    shape_of(value, "")
    return np.array(value, dtype=np.float64)
