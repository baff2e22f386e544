"""The layouts section: the checks whose inputs were split across ranks, counted per framework
and layout, and the bytes their collectives carried against the O(N) floor."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from conformance.report.blocks import Cell, Code, Heading, Para, Table
from conformance.report.matrix import outcome_cell
from conformance.report.model import ReportData, layout_name, layout_order, sorted_frameworks
from conformance.results.records import read_number


def layout_text(layout: object) -> str:
    """A record's layout in words for a failure's facts: 'vocab2 (vocab over 2 ranks)'."""
    name = layout_name(layout)
    if name is None:
        return ""
    if isinstance(layout, dict) and layout.get("axis") is not None and layout.get("ranks") is not None:
        ranks = layout["ranks"]
        return f"{name} ({layout['axis']} over {ranks} rank{'' if ranks == 1 else 's'})"
    return name


def layouts(data: ReportData) -> list:
    """Shown when any record ran under a layout: frameworks as rows, layouts as columns."""
    sharded = [r for r in data.records if layout_name(r.get("layout")) is not None]
    if not sharded:
        return []
    names, groups = _columns(sharded)
    frameworks = sorted_frameworks(r.get("framework") for r in sharded)
    blocks: list = [
        Heading(2, "Layouts: framework x layout", "layouts"),
        Para(["Checks whose inputs were split across ranks: ", Code("vocabN"), " the class axis over N "
              "tensor-parallel ranks, ", Code("batchN"), " and ", Code("sequenceN"), " the batch or sequence over "
              "N data- or sequence-parallel ranks; a one-rank layout is the same implementation unsharded. "
              "The expected values are the reference of the global inputs. Each cell counts the checks as the "
              "matrix does: P passed, F failed, E error, K known divergence, X fixed divergence, S skipped; "
              "then the max ULP error of the reference checks that passed or failed. - : nothing ran."])]
    rows = [[Cell(Code(str(f)))] + [outcome_cell(groups.get((f, name), [])) for name in names] for f in frameworks]
    blocks.append(Table(["framework"] + names, rows, "layouts"))
    return blocks + _communication(sharded, names)


def _columns(records: list[dict]) -> tuple[list[str], dict]:
    """The layout names in axis, then rank, order, and the records of each (framework, layout)."""
    order: dict[str, tuple] = {}
    groups: defaultdict[tuple, list] = defaultdict(list)
    for r in records:
        name = layout_name(r.get("layout")) or ""
        order.setdefault(name, layout_order(r.get("layout")))
        groups[(r.get("framework"), name)].append(r)
    return sorted(order, key=lambda name: order[name]), groups


# --- communication: bytes across ranks against the O(N) floor ---------------------------------


def communication_numbers(record: dict) -> tuple[float | None, float | None, list[str]] | None:
    """(bytes, floor bytes, the collectives that carried them) of a record's communication, or
    None where it has none. The bytes are the most any rank sent (max_bytes_per_rank), as the
    floor is one rank's; else a total_bytes; else the sum of the bytes by collective."""
    counted = record.get("communication")
    if not isinstance(counted, dict):
        return None
    by_collective = counted.get("bytes")
    if not isinstance(by_collective, dict):
        by_collective = {}
    total = read_number(counted.get("max_bytes_per_rank"))
    if total is None:
        total = read_number(counted.get("total_bytes"))
    if total is None and by_collective:
        parts = [read_number(v) for v in by_collective.values()]
        total = sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    return total, read_number(counted.get("floor_bytes")), sorted(map(str, by_collective))


def ratio(total: float | None, floor: float | None) -> float | None:
    """Bytes over the floor; None where either is unknown or both are zero (one rank: nothing to send)."""
    if total is None or floor is None:
        return None
    if floor == 0:
        return None if total == 0 else math.inf
    return total / floor


def median(values: Iterable[float | None]) -> float | None:
    """The median of the known values; NaN when any is NaN (a count that is no number)."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    if any(math.isnan(v) for v in known):
        return math.nan
    middle = len(known) // 2
    return known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2


def bytes_text(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    return f"{value:,.0f} B" if value == int(value) else f"{value:,.1f} B"


def ratio_text(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    return f"{value:.3g}x"


def _communication(records: list[dict], names: list[str]) -> list:
    """Per framework and layout, where any check counted its collectives."""
    counted: defaultdict[tuple, list] = defaultdict(list)
    for r in records:
        numbers = communication_numbers(r)
        if numbers is not None:
            counted[(r.get("framework"), layout_name(r.get("layout")))].append(numbers)
    if not counted:
        return []
    blocks: list = [Heading(3, "Communication", "layouts-communication"),
                    Para("The bytes that crossed ranks in one forward and backward, counted at the collectives "
                         "(the most any one rank sent), against the O(N) floor: one float32 per token the rank "
                         "holds (a vocab-parallel loss needs about three: the row's maximum, its sum of "
                         "exponentials and its target's logit). "
                         "A ratio far above 1 is an implementation that moves the logits (O(N V)), not the "
                         "per-token statistics. Medians over the checks that counted.")]
    rows = []
    for framework in sorted_frameworks(f for f, _ in counted):
        for name in [n for n in names if (framework, n) in counted]:
            group = counted[(framework, name)]
            ratios = [ratio(total, floor) for total, floor, _ in group]
            worst = max(ratios, key=_ratio_key)
            rows.append([Cell(Code(str(framework))), Cell(Code(name)), Cell(str(len(group)), "num"),
                         Cell(", ".join(sorted({c for _, _, names_ in group for c in names_})) or "-"),
                         Cell(bytes_text(median(total for total, _, _ in group)), "num"),
                         Cell(bytes_text(median(floor for _, floor, _ in group)), "num"),
                         Cell(ratio_text(median(ratios)), "num"), Cell(ratio_text(worst), "num")])
    blocks.append(Table(["framework", "layout", "checks", "collectives", "bytes (median)", "floor (median)",
                         "bytes / floor (median)", "bytes / floor (max)"], rows, "communication"))
    return blocks


def _ratio_key(value: float | None) -> tuple:
    """Order for the largest ratio: unknown lowest, NaN highest (it is the one to look at)."""
    if value is None:
        return (0, 0.0)
    return (2, 0.0) if math.isnan(value) else (1, value)
