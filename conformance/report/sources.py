"""The sources section: how good each golden a source printed is, against the reference.

A golden is judged once (conformance/core/goldens.py), whichever framework's check carries
it: exact, rounded to its digits, truncated to them, within the tolerance its source states
(rel, abs), or inexact (wrong beyond the digits it prints: a test of it passes only through a
tolerance looser than its digits). Beside the
verdict, how many of the frameworks that ran reproduce it.
"""
from __future__ import annotations

import math
from collections import Counter

from conformance.core.goldens import VERDICTS
from conformance.report.blocks import Cell, Code, Heading, Para, Table
from conformance.report.model import QUANTITY_LABELS, ReportData, array_summary, number_text, rank
from conformance.results.records import read_number

VERDICT_CLASSES = {"exact": "pass", "rounded": "pass", "truncated": "known", "within": "known", "inexact": "fail"}


def sources(data: ReportData) -> list:
    goldens: dict[tuple, dict] = {}
    for r in data.records:
        golden = r.get("golden")
        if not golden:
            continue
        key = (r.get("case"), r.get("quantity"), r.get("dtype"), r.get("source"))
        entry = goldens.setdefault(key, {"golden": golden, "ran": 0, "reproduced": 0})
        if r["outcome"] != "skipped":
            entry["ran"] += 1
            entry["reproduced"] += r["outcome"] == "passed"
    if not goldens:
        return []
    counts = Counter(g["golden"].get("verdict") for g in goldens.values())
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    blocks = [Heading(2, "Sources", "sources"),
              Para([f"Numbers printed by sources: {len(goldens)}, each judged against the reference (the variant "
                    f"it names): {summary}. Rounded and truncated goldens reproduce the mathematics to the digits "
                    "they print; an inexact one is wrong beyond them, and a test that checks it passes only through a "
                    "tolerance looser than its digits."])]
    rows = []
    for (case, quantity, dtype, source), entry in sorted(goldens.items(), key=lambda item: (
            -rank(item[1]["golden"].get("verdict"), VERDICTS)[0], str(item[0][0]))):  # worst (or unknown) first
        golden = entry["golden"]
        verdict = str(golden.get("verdict") or "?")
        rows.append([Cell(Code(str(case))), Cell(QUANTITY_LABELS.get(quantity, quantity)), Cell(dtype),
                     Cell(source or ""),
                     Cell(f"{_as_printed(golden.get('printed'))} ({golden.get('precision') or 'exact'})"),
                     Cell(array_summary(golden.get("reference"), "float64"), "",
                          f"reference variant {golden.get('variant') or '?'}"),
                     Cell(verdict, VERDICT_CLASSES.get(verdict, "")),
                     Cell(f"{entry['reproduced']} of {entry['ran']}" if entry["ran"] else "none ran", "num")])
    blocks.append(Table(["case", "quantity", "dtype", "source", "printed", "reference", "verdict",
                         "frameworks reproducing it"], rows, "sources"))
    return blocks


def _printed(value: object) -> str:
    """One printed number, as short as reads back (repr); NaN, infinities and gaps as words."""
    number = read_number(value)
    if number is not None and math.isfinite(number) and not isinstance(value, int):
        return repr(number)
    return number_text(value)


def _as_printed(summary: object) -> str:
    """The golden as its source printed it (shortest repr), or its shape when too long to show."""
    if not isinstance(summary, dict):
        return number_text(summary)
    values = summary.get("values")
    if not isinstance(values, list):
        return f"an array of shape {summary.get('shape')}"
    text = ", ".join(_printed(v) for v in values)
    return text if not summary.get("shape") else f"[{text}]"
