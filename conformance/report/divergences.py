"""The known-divergences section: each manifest entry that matched, what it says and what was seen."""
from __future__ import annotations

from collections import Counter, defaultdict

from conformance.core.manifest import Entry
from conformance.report.blocks import Block, Bullets, Cell, Code, Heading, Link, Para, Section, Strong, Table
from conformance.report.model import (OUTCOME_WORDS, ReportData, array_summary, by_framework_then_id,
                                      count_text, first_line, layout_name, quantity_label, ran, record_ulp,
                                      sorted_frameworks, ulp_text)

MAX_OBSERVED = 6  # checks shown per known divergence


def divergences(data: ReportData) -> list:
    """A summary table, then one box per matched entry (manifest order; ids it lacks after)."""
    blocks = [Heading(2, "Known divergences", "divergences"),
              Para(["Entries of the known-divergence manifest (", Code("conformance/data/divergences.yaml"),
                    ") that matched checks in this run: where a framework differs from the mathematics, from its "
                    "declared variant, or from a number a source printed. An xfail is strict: a check that starts "
                    "passing is reported as a fixed divergence (X), so the entry can be updated."])]
    if data.manifest_error:
        blocks.append(Para(f"The manifest could not be read ({data.manifest_error}); entries are shown by id only.",
                           "note"))
    entries = {e.id: e for e in data.manifest}
    matched = defaultdict(list)
    for r in data.records:
        if r.get("manifest"):
            matched[r["manifest"]].append(r)
    if not matched:
        blocks.append(Para("No manifest entry matched a check.", "note"))
    order = [e.id for e in data.manifest if e.id in matched] + sorted(set(matched) - set(entries))
    summary_rows = [_summary_row(entry_id, entries.get(entry_id), matched[entry_id]) for entry_id in order]
    if summary_rows:
        blocks.append(Table(["entry", "action", "frameworks", "checks"], summary_rows, "divergences"))
    for entry_id in order:
        blocks.append(_divergence(entry_id, entries.get(entry_id), matched[entry_id]))
    return blocks + _unmatched(data, matched)


def _summary_row(entry_id: str, entry: Entry | None, group: list) -> list:
    """entry, action, frameworks, checks: one line of the table above the entries."""
    seen = _seen(group)
    outcomes = Counter(r["outcome"] for r in seen)
    counted = ", ".join(count_text(n, o) for o, n in sorted(outcomes.items())) or "none ran"
    if len(group) > len(seen):
        counted += f" ({len(group) - len(seen)} not run here)"
    return [Cell(Link(entry_id, f"#div-{entry_id}")),
            Cell(entry.action if entry else "?"),
            Cell(", ".join(sorted_frameworks(r.get("framework") for r in seen or group))),
            Cell(counted, "xpass" if outcomes["xpassed"] else "")]


def _unmatched(data: ReportData, matched: dict) -> list:
    """Entries for a framework that ran here and matched none of its checks: perhaps fixed upstream."""
    present = {r.get("framework") for r in ran(data.records)}
    unmatched = [e for e in data.manifest if e.id not in matched and any(e.may_cover(f) for f in present)]
    if not unmatched:
        return []
    return [Heading(3, "Entries that matched no check", "divergences-unmatched"),
            Para("These entries cover a framework that ran here but matched none of its checks: the "
                 "divergence may be gone at this version, or the entry's patterns no longer name a case.", "note"),
            Bullets([[Code(e.id), f" ({e.action}, versions {e.versions or 'any'}): {first_line(e.reason)}"]
                     for e in unmatched])]


def _pattern(value: object) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def _seen(group: list) -> list:
    """The checks of a manifest entry that ran here, or that the entry itself skipped."""
    return [r for r in group if r["outcome"] != "skipped" or r.get("reason") == "manifest"]


def _divergence(entry_id: str, entry: Entry | None, group: list) -> Section:
    """One entry: what the manifest says (when this report's manifest has it), then what was observed."""
    blocks: list[Block] = [Heading(3, entry_id, f"div-{entry_id}")]
    if entry is not None:
        blocks.append(Para(entry.reason))
        facts = [[Strong("action:"), " ", f"{entry.action}" + (" (strict)" if entry.action == "xfail" else "")],
                 [Strong("versions:"), " ", entry.versions or "any"],
                 [Strong("matches:"), " ", Code(", ".join(f"{k}={_pattern(v)}" for k, v in entry.match.items()))]]
        if entry.describe_when():
            facts.append([Strong("when:"), " ", entry.describe_when()])
        if entry.observed:
            facts.append([Strong("observed (manifest):"), " ", entry.observed])
        if entry.link:
            facts.append([Strong("link:"), " ", Link(entry.link, entry.link)])
        blocks.append(Bullets(facts))
    else:
        blocks.append(Para("Not in the manifest read by this report (a different manifest produced the results).",
                           "note"))
    rows = []
    seen = _seen(group)
    for r in by_framework_then_id(seen)[:MAX_OBSERVED]:
        dtype = r.get("dtype")
        # the layout beneath the case: vocab1 and vocab2 of one case are two rows
        case = Cell(r.get("case", ""), sub=layout_name(r.get("layout")) or "")
        rows.append([Cell(Code(r.get("framework", ""))), case, Cell(dtype), Cell(r.get("device")),
                     Cell(quantity_label(r.get("quantity"))),
                     Cell(array_summary(r.get("expected"), dtype)), Cell(array_summary(r.get("actual"), dtype)),
                     Cell(ulp_text(record_ulp(r)) or "-", "num"),
                     Cell(OUTCOME_WORDS[r["outcome"]], {"xpassed": "xpass", "xfailed": "known"}.get(r["outcome"], ""))])
    caption = f"Observed in this run ({len(seen)} check(s)"
    caption += f", first {MAX_OBSERVED} shown" if len(seen) > MAX_OBSERVED else ""
    caption += f"; {len(group) - len(seen)} more matched but did not run here)" if len(group) > len(seen) else ")"
    if not rows:
        return Section(blocks + [Para(caption.replace("Observed in this run", "Nothing observed"), "note")], "entry")
    blocks.append(Table(["framework", "case", "dtype", "device", "quantity", "expected", "actual", "ULP", "outcome"],
                        rows, "observed", caption))
    return Section(blocks, "entry")

