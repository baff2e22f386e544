"""Tolerances as data, ULP distance, and the conditioning-aware bound."""
import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

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
    abs: float
    reason: str = ""

    def as_record(self, dtype):
        """{ulp, abs, rel}: rel is per unit of conditioning scale."""
        return {"ulp": self.ulp, "abs": self.abs, "rel": self.cond * eps(dtype)}


@lru_cache(maxsize=None)
def table():
    return yamlio.load_file(TABLE_PATH)


def for_check(dtype, framework="*", op="*", quantity="*"):
    data = table()
    base = dict(data["dtypes"][dtype])
    reason = ""
    for override in data.get("overrides") or []:
        match = override["match"]
        fields = {"dtype": dtype, "framework": framework, "op": op, "quantity": quantity}
        if all(fnmatch.fnmatchcase(fields[k], str(v)) for k, v in match.items()):
            base.update({k: override[k] for k in ("ulp", "cond", "abs") if k in override})
            reason = override["reason"]
    return Tolerance(float(base["ulp"]), float(base["cond"]), float(base["abs"]), reason)


def pinned_ulps():
    return float(table()["pinned"]["ulp"])


def ulp(values, dtype):
    """The gap between adjacent numbers of `dtype` at each |value|, with a floor of eps**2 near 0."""
    magnitude = np.maximum(np.abs(np.asarray(values, np.float64)), eps(dtype) ** 2)
    magnitude = np.where(np.isfinite(magnitude), magnitude, 1.0)
    _, exponent = np.frexp(magnitude)  # magnitude = m * 2**exponent, m in [0.5, 1)
    exponent = np.maximum(exponent - 1, MIN_EXPONENT[dtype])
    return np.ldexp(1.0, exponent - (PRECISION[dtype] - 1))


def ulp_distance(actual, expected, dtype):
    """|actual - expected| in ULPs of expected; -0.0 and +0.0 are equal."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(actual - expected) / ulp(expected, dtype)


def bound(expected, scale, dtype, tolerance):
    """The largest |actual - expected| accepted at each element."""
    return (tolerance.ulp * ulp(expected, dtype)
            + tolerance.cond * eps(dtype) * np.abs(np.asarray(scale, np.float64))
            + tolerance.abs)
