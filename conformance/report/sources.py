"""The sources section: how good each golden a source printed is, against the reference.

A golden is judged once (conformance/core/goldens.py), whichever framework's check carries
it: exact, rounded to its digits, truncated to them, within the tolerance its source states
(rel, abs), or inexact (wrong beyond the digits it prints: a test of it passes only through a
tolerance looser than its digits). Beside the
verdict, how many of the frameworks that ran reproduce it.
"""
from __future__ import annotations

from collections import Counter

from conformance.core.goldens import VERDICTS
from conformance.report.blocks import Cell, Code, Heading, Para, Table
from conformance.report.model import QUANTITY_LABELS, ReportData, array_summary

VERDICT_CLASSES = {"exact": "pass", "rounded": "pass", "truncated": "known", "within": "known", "inexact": "fail"}


def sources(data: ReportData) -> list:
    goldens: dict[tuple, dict] = {}
    for r in data.records:
        golden = r.get("golden")
        if not golden:
            continue
        key = (r["case"], r["quantity"], r["dtype"], r.get("source"))
        entry = goldens.setdefault(key, {"golden": golden, "ran": 0, "reproduced": 0})
        if r["outcome"] != "skipped":
            entry["ran"] += 1
            entry["reproduced"] += r["outcome"] == "passed"
    if not goldens:
        return []
    counts = Counter(g["golden"]["verdict"] for g in goldens.values())
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    blocks = [Heading(2, "Sources", "sources"),
              Para([f"Numbers printed by sources: {len(goldens)}, each judged against the reference (the variant "
                    f"it names): {summary}. Rounded and truncated goldens reproduce the mathematics to the digits they print; "
                    "an inexact one is wrong beyond them, and a test that checks it passes only through a "
                    "tolerance looser than its digits."])]
    rows = []
    for (case, quantity, dtype, source), entry in sorted(goldens.items(), key=lambda item: (
            VERDICTS.index(item[1]["golden"]["verdict"]) * -1, item[0][0])):
        golden = entry["golden"]
        verdict = golden["verdict"]
        rows.append([Cell(Code(case)), Cell(QUANTITY_LABELS.get(quantity, quantity)), Cell(dtype),
                     Cell(source or ""), Cell(f"{_as_printed(golden['printed'])} ({golden['precision']})"),
                     Cell(array_summary(golden["reference"], "float64"), "", f"reference variant {golden['variant']}"),
                     Cell(verdict, VERDICT_CLASSES[verdict]),
                     Cell(f"{entry['reproduced']} of {entry['ran']}" if entry["ran"] else "none ran", "num")])
    blocks.append(Table(["case", "quantity", "dtype", "source", "printed", "reference", "verdict",
                         "frameworks reproducing it"], rows, "sources"))
    return blocks


def _as_printed(summary: dict) -> str:
    """The golden as its source printed it (shortest repr), or its shape when too long to show."""
    values = summary.get("values")
    if values is None:
        return f"an array of shape {summary.get('shape')}"
    text = ", ".join(repr(v) for v in values)
    return text if not summary.get("shape") else f"[{text}]"
