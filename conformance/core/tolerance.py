"""Tolerances as data, ULP distance, and the conditioning-aware bound."""
import fnmatch
import os
from decimal import Decimal
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from conformance import data
from conformance.cases import yamlio
from reference.dtypes import eps

TABLE_PATH = data.TOLERANCES

# Significand bits, implicit bit included.
PRECISION = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}
MIN_EXPONENT = {"float16": -14, "bfloat16": -126, "float32": -126, "float64": -1022}


@dataclass(frozen=True)
class Tolerance:
    ulp: float
    cond: float
    abs: float | np.ndarray  # a printed number's half-width: one per element
    reason: str = ""

    def as_record(self, dtype: str) -> dict[str, float]:
        """{ulp, abs, rel}: rel is per unit of conditioning scale."""
        # printed arrays carry one absolute bound per element: the record gives the largest
        return {"ulp": self.ulp, "abs": float(np.max(self.abs, initial=0.0)), "rel": self.cond * eps(dtype)}


class ToleranceTableError(Exception):
    """The tolerance table is malformed: str() names the file and the key."""


BOUND_KEYS = ("ulp", "cond", "abs")
OVERRIDE_MATCH = ("dtype", "framework", "op", "quantity")


@lru_cache(maxsize=None)
def table(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    path = TABLE_PATH if path is None else path
    try:
        loaded = yamlio.load_file(path)
    except yamlio.YamlError as exc:
        raise ToleranceTableError(f"{path}: {exc}") from None
    check_table(loaded, path)
    return loaded


def check_table(loaded: object, path: str | os.PathLike[str]) -> None:
    """Refuse a misspelt or missing key instead of ignoring it."""
    def fail(key: str, message: str) -> NoReturn:
        raise ToleranceTableError(f"{path}: key {key!r}: {message}")

    if not isinstance(loaded, dict) or set(loaded) - {"dtypes", "pinned", "overrides"}:
        fail("", "the table holds dtypes, pinned and overrides only")
    for dtype in PRECISION:
        row = loaded.get("dtypes", {}).get(dtype)
        if not isinstance(row, dict) or sorted(row) != sorted(BOUND_KEYS):
            fail(f"dtypes.{dtype}", f"needs exactly {', '.join(BOUND_KEYS)}")
    if not isinstance(loaded.get("pinned"), dict) or "ulp" not in loaded["pinned"]:
        fail("pinned", "needs ulp")
    for i, override in enumerate(loaded.get("overrides") or []):
        where = f"overrides[{i}]"
        if not isinstance(override, dict) or set(override) - {"match", "reason", *BOUND_KEYS}:
            fail(where, f"holds match, reason and any of {', '.join(BOUND_KEYS)}")
        if not str(override.get("reason", "")).strip():
            fail(where + ".reason", "an override says why")
        if not isinstance(override.get("match"), dict) or set(override["match"]) - set(OVERRIDE_MATCH):
            fail(where + ".match", f"a mapping over {', '.join(OVERRIDE_MATCH)}")


def for_check(dtype: str, framework: str = "*", op: str = "*", quantity: str = "*",
              loaded: dict[str, Any] | None = None) -> Tolerance:
    """The bound for one check: the dtype's row, then every matching override in order."""
    loaded = table() if loaded is None else loaded
    base = dict(loaded["dtypes"][dtype])
    reason = ""
    fields = {"dtype": dtype, "framework": framework, "op": op, "quantity": quantity}
    for override in loaded.get("overrides") or []:
        if all(fnmatch.fnmatchcase(fields[k], str(v)) for k, v in override["match"].items()):
            base.update({k: override[k] for k in BOUND_KEYS if k in override})
            reason = override["reason"]
    return Tolerance(float(base["ulp"]), float(base["cond"]), float(base["abs"]), reason)


def pinned_ulps() -> float:
    return float(table()["pinned"]["ulp"])


def ulp(values: npt.ArrayLike, dtype: str) -> np.ndarray:
    """The gap between adjacent numbers of `dtype` at each |value|, with a floor of eps**2 near 0."""
    magnitude = np.maximum(np.abs(np.asarray(values, np.float64)), eps(dtype) ** 2)
    magnitude = np.where(np.isfinite(magnitude), magnitude, 1.0)
    _, exponent = np.frexp(magnitude)  # magnitude = m * 2**exponent, m in [0.5, 1)
    exponent = np.maximum(exponent - 1, MIN_EXPONENT[dtype])
    return np.ldexp(1.0, exponent - (PRECISION[dtype] - 1))


def ulp_distance(actual: npt.ArrayLike, expected: npt.ArrayLike, dtype: str) -> np.ndarray:
    """|actual - expected| in ULPs of expected; -0.0 and +0.0 are equal."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(actual - expected) / ulp(expected, dtype)


def bound(expected: npt.ArrayLike, scale: npt.ArrayLike, dtype: str, tolerance: Tolerance) -> np.ndarray:
    """The largest |actual - expected| accepted at each element."""
    return (tolerance.ulp * ulp(expected, dtype)
            + tolerance.cond * eps(dtype) * np.abs(np.asarray(scale, np.float64))
            + tolerance.abs)


def printed_interval(value: npt.ArrayLike, digits: int | None = None,
                     decimals: int | None = None) -> tuple[np.ndarray, np.ndarray] | tuple[float, float]:
    """(centre, half-width), element by element, of the numbers that print as `value` to
    `digits` significant digits or `decimals` decimal places, rounded to nearest (within half
    a unit of the last digit) or truncated toward zero (up to one unit further from zero). A
    printed 0 is exactly 0 to significant digits, and anything under one unit either side to
    decimal places. Just below a power of ten the last digit is worth a tenth as much
    (0.9995 rounds to 1.00), so that side is a tenth as wide."""
    values = np.asarray(value, np.float64)
    bounds = np.array([_printed_bounds(float(v), digits, decimals) for v in values.ravel()]).reshape(
        values.shape + (2,))
    centre, half_width = (bounds[..., 0] + bounds[..., 1]) / 2, (bounds[..., 1] - bounds[..., 0]) / 2
    if values.ndim == 0:
        return float(centre), float(half_width)
    return centre, half_width


def _printed_bounds(value: float, digits: int | None, decimals: int | None) -> tuple[float, float]:
    """[low, high] of what prints as value (see printed_interval)."""
    if decimals is not None:
        unit = 10.0 ** -decimals
        if value == 0:
            return -unit, unit
        toward_zero = unit
    else:
        if value == 0 or not np.isfinite(value):
            return value, value
        assert digits is not None, "printed to digits or to decimals"
        exponent = Decimal(repr(abs(value))).adjusted()  # exact, where log10 rounds up 0.99999999999999
        unit = 10.0 ** (exponent - digits + 1)
        toward_zero = unit / 10 if Decimal(repr(abs(value))) == Decimal(1).scaleb(exponent) else unit
    sign = 1.0 if value > 0 else -1.0
    low, high = abs(value) - toward_zero / 2, abs(value) + unit  # rounded from below, truncated from above
    return (sign * low, sign * high) if sign > 0 else (sign * high, sign * low)
