"""What the report reads from the merged records: orders, ULP errors, and how values are written.

Records are the dicts of the results JSON. Nothing here builds a page: sections.py and the
section modules turn this into blocks.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from conformance.core import quantities
from conformance.frameworks import order_key
from conformance.results.records import FAILING, read_number
from conformance.sharded.layouts import AXES as LAYOUT_AXES

OP_ORDER = ("sigmoid_cross_entropy", "binary_crossentropy", "softmax_cross_entropy", "categorical_crossentropy",
            "sparse_softmax_cross_entropy", "sparse_categorical_crossentropy", "mean_squared_error",
            "linear_cross_entropy")
DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
DEVICE_ORDER = ("cpu", "cuda")
QUANTITY_ORDER = quantities.REPORT_ORDER
QUANTITY_LABELS = quantities.LABELS


def quantity_label(quantity: str | None) -> str | None:
    """How the report names a quantity: its label, or the name itself when it has none."""
    return QUANTITY_LABELS.get(quantity, quantity) if quantity is not None else None
OUTCOME_WORDS = {"passed": "passed", "failed": "failed", "error": "error", "xfailed": "known divergence",
                 "xpassed": "fixed divergence (xpassed)", "skipped": "skipped"}


# --- order: known values first, in their order; any other value after them, never dropped ----


def rank(value: object, order: tuple) -> tuple:
    return (order.index(value), "") if value in order else (len(order), str(value))


def in_order(values: Iterable, order: tuple) -> list:
    """The distinct values, known ones in `order`, then the others alphabetically."""
    return sorted(set(values), key=lambda value: rank(value, order))


def sorted_frameworks(values: Iterable) -> list:
    """Distinct framework ids: built-in ones in table order, then plug-in ids alphabetically."""
    return sorted(set(values), key=order_key)


def layout_name(layout: object) -> str | None:
    """How a check id names a record's layout ({"axis": "vocab", "ranks": 2} -> vocab2); None for
    an unsharded check. A malformed layout is named as it stands, never dropped."""
    if layout is None or layout == "" or layout == {}:
        return None
    if isinstance(layout, dict):
        axis, ranks = layout.get("axis"), layout.get("ranks")
        return f"{axis if axis is not None else '?'}{ranks if ranks is not None else '?'}"
    return str(layout)


def layout_order(layout: object) -> tuple:
    """Axis (vocab, batch, sequence, then others), then the number of ranks."""
    name = layout_name(layout) or ""
    if isinstance(layout, dict):
        axis, ranks = layout.get("axis"), read_number(layout.get("ranks"))
    else:  # a name as an id carries it: the axis, then the ranks
        axis = name.rstrip("0123456789")
        ranks = read_number(name[len(axis):] or None)
    return rank(axis, LAYOUT_AXES) + (math.inf if ranks is None or math.isnan(ranks) else ranks, name)


def by_framework_then_id(records: Iterable[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (order_key(r.get("framework")), str(r["id"])))


# --- which checks count ---------------------------------------------------------------------


def ran(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r["outcome"] != "skipped"]


def record_ulp(record: dict) -> float | None:
    """max_ulp_err as a float ('inf', '-inf' and 'nan' strings included), or None when not measured."""
    return read_number(record.get("max_ulp_err"))


# Quantities compared with 0 (the ranks' spread, a difference of two results): their ULP error
# is counted in ULPs of 0, which says nothing of accuracy.
AGAINST_ZERO = frozenset(row.name for row in quantities.QUANTITIES.values()
                         if row.expected in ("agreement", "difference"))


def compared_ulps(records: Iterable[dict]) -> list[float | None]:
    """ULP errors that count as accuracy: reference checks that passed or failed (not known
    divergences), of a quantity compared with a value rather than with 0."""
    return [record_ulp(r) for r in records
            if r.get("kind", "reference") == "reference" and r["outcome"] in ("passed", "failed")
            and r.get("quantity") not in AGAINST_ZERO]


def max_ulp(values: Iterable[float | None]) -> float | None:
    """The largest measured error; NaN when any is NaN (a NaN where the reference is finite)."""
    measured = [v for v in values if v is not None]
    if not measured:
        return None
    if any(math.isnan(v) for v in measured):
        return math.nan
    return max(measured)


# --- how values are written -------------------------------------------------------------------


# Every function here takes a number as a record holds it (float, int, "nan", "inf", "-inf",
# None, another string) and reads it with read_number: a section may hand over a raw field.


def _non_finite(value: float) -> str:
    return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"


def ulp_text(ulp: object) -> str:
    """A ULP error in a table cell: '' when not measured."""
    ulp = read_number(ulp)
    if ulp is None:
        return ""
    if not math.isfinite(ulp):
        return _non_finite(ulp)
    if ulp == 0:
        return "0"
    if abs(ulp) < 10:
        return f"{ulp:.2g}"
    if abs(ulp) < 1e5:
        return f"{ulp:,.0f}"
    return f"{ulp:.2e}"


def ulp_class(ulp: object) -> str:
    """The CSS colour band of an error (u0 exact ... u5 over 1000 ULPs, NaN or infinite)."""
    ulp = read_number(ulp)
    if ulp is None:
        return ""
    if not math.isfinite(ulp) or ulp > 1e3:  # -inf too: an error below zero is no measurement
        return "u5"
    for limit, cls in ((0, "u0"), (1, "u1"), (4, "u2"), (16, "u3"), (1e3, "u4")):
        if ulp <= limit:
            return cls
    return "u5"


def _absent(value: object) -> str:
    """What stands in for a missing number: '-', or the string the record holds instead."""
    return "-" if value is None or value == "" or isinstance(value, bool) else str(value)


def number_text(value: object, dtype: str | None = None) -> str:
    """A recorded number with as many digits as its dtype holds."""
    number = read_number(value)
    if number is None:
        return _absent(value)
    if not math.isfinite(number):
        return _non_finite(number)
    if isinstance(value, int):
        return str(value)
    digits = 17 if dtype == "float64" else 9 if dtype == "float32" else 5
    return f"{number:.{digits}g}"


def short_number(value: object) -> str:
    """An error or a tolerance term in three significant digits."""
    number = read_number(value)
    if number is None:
        return _absent(value)
    return f"{number:.3g}" if math.isfinite(number) else _non_finite(number)


def array_summary(value: object, dtype: str | None = None) -> str:
    """An array summary from a record (shape, worst, index, values) in one line."""
    if not isinstance(value, dict):
        return "-" if value is None else str(value)
    values = value.get("values")
    if isinstance(values, list) and len(values) <= 4:
        text = "[" + ", ".join(number_text(v, dtype) for v in values) + "]"
    else:
        text = f"{number_text(value.get('worst'), dtype)} at {tuple(value.get('index') or ())}"
    shape = value.get("shape")
    if shape is not None:
        text += f" (shape {list(shape)}{', ' + value['dtype'] if value.get('dtype') else ''})"
    return text


def count_text(n: int, outcome: str) -> str:
    """'3 passed', '1 known divergence', '2 known divergences'."""
    word = OUTCOME_WORDS[outcome]
    if n != 1 and word.endswith("divergence"):
        word += "s"
    elif n != 1 and "divergence (" in word:
        word = word.replace("divergence (", "divergences (")
    return f"{n} {word}"


def first_line(text: str | None) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


# --- the data -------------------------------------------------------------------------------


class ReportData:
    """What the sections need, computed once from the merged records."""

    def __init__(self, env: dict | None, records: list[dict], sources: list | None = None,
                 manifest: list | None = None, manifest_error: str = ""):
        self.env = env or {}
        self.records = records
        self.sources = sources or []  # (path, environment) of each results file
        self.manifest = manifest or []  # the known-divergence entries this report reads
        self.manifest_error = manifest_error
        self.frameworks = sorted_frameworks(r.get("framework", "?") for r in records)
        self.ops = in_order((r.get("op", "?") for r in records), OP_ORDER)
        self.dtypes = in_order((r.get("dtype", "?") for r in records), DTYPE_ORDER)
        self.devices = in_order((r.get("device", "?") for r in records), DEVICE_ORDER)
        self.outcomes = Counter(r["outcome"] for r in records)
        self.failures = [r for r in records if r["outcome"] in FAILING]


def heatmap_cells(records: Iterable[dict]) -> dict:
    """(framework, op) -> what plots.error_heatmap draws: max ULP error and counts by outcome."""
    groups = defaultdict(list)
    for r in records:
        groups[(r.get("framework"), r.get("op"))].append(r)
    cells = {}
    for key, group in groups.items():
        outcomes = Counter(r["outcome"] for r in group)
        cells[key] = {"ulp": max_ulp(compared_ulps(group)),
                      "failed": sum(outcomes[o] for o in FAILING),
                      "known": outcomes["xfailed"],
                      "ran": len(ran(group))}
    return cells
