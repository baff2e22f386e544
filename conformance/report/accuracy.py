"""The accuracy section: libm-style tables of the largest ULP error, one per dtype."""
from collections import defaultdict

from conformance.report.blocks import Cell, Code, Heading, Para, Strong, Table
from conformance.report.model import (DEVICE_ORDER, QUANTITY_LABELS, QUANTITY_ORDER, ReportData, compared_ulps,
                                      in_order, max_ulp, ran, ulp_class, ulp_text)


def accuracy(data: ReportData) -> list:
    """Rows op x quantity, columns framework (x device when checks ran on more than one)."""
    blocks = [Heading(2, "Accuracy: max observed ULP error", "accuracy"),
              Para(["In the style of libm's accuracy tables: the largest error, in ULPs of the output dtype, "
                    "observed over every case of an op, against the float64 reference computed from the inputs "
                    "after they were cast to the dtype under test. Reference checks that passed or failed count; "
                    "known divergences do not (they are semantic differences, listed below) and neither do "
                    "checks against numbers a source printed. A passing check may exceed 4 ULPs where the loss "
                    "is ill-conditioned: the bound has a conditioning term (see ",
                    Code("conformance/data/tolerances.yaml"), "). ", Strong("!"),
                    " marks a cell with a failed check, K one with only known divergences, "
                    "- an op the framework does not offer or that did not run."])]
    reference = [r for r in data.records if r.get("kind", "reference") == "reference"]
    reference_ran = ran(reference)
    ran_devices = in_order((r.get("device") for r in reference_ran), DEVICE_ORDER)
    columns = [(f, device) for f in data.frameworks for device in ran_devices
               if any(r.get("framework") == f and r.get("device") == device for r in reference_ran)]
    if not columns:
        return blocks + [Para("No reference check ran.", "note")]
    groups = defaultdict(list)
    for r in reference:
        groups[(r.get("dtype"), r.get("op"), r.get("quantity"), r.get("framework"), r.get("device"))].append(r)
    header = ["op", "quantity"] + [f if len(ran_devices) == 1 else f"{f} ({d})" for f, d in columns]
    for dtype in data.dtypes:
        rows = []
        for op in data.ops:
            op_records = [r for r in reference if r.get("op") == op and r.get("dtype") == dtype]
            quantities = in_order((r.get("quantity") for r in op_records), QUANTITY_ORDER)
            for i, quantity in enumerate(quantities):
                cells = [_accuracy_cell(groups.get((dtype, op, quantity, f, device), [])) for f, device in columns]
                row_cls = "group" if i == 0 else ""
                rows.append(([Cell(Code(op) if i == 0 else ""), Cell(QUANTITY_LABELS.get(quantity, quantity))] + cells,
                             row_cls))
        if rows and any(c.content not in ("-",) for row, _ in rows for c in row[2:]):  # a dtype nothing ran is left out
            blocks.append(Heading(3, dtype, f"accuracy-{dtype}"))
            blocks.append(Table(header, rows, "accuracy"))
    return blocks


def _accuracy_cell(group: list) -> Cell:
    ulp = max_ulp(compared_ulps(group))
    failed = any(r["outcome"] in ("failed", "error") for r in group)
    known = any(r["outcome"] in ("xfailed", "xpassed") for r in group)
    if ulp is None:
        return (Cell("K", "known", "only known divergences ran") if known else
                Cell("E" if failed else "-", "fail" if failed else "skip"))
    title = f"{len(ran(group))} checks ran"
    if known:
        title += "; known divergences not counted"
    return Cell(ulp_text(ulp) + (" !" if failed else ""), ("fail " if failed else "") + ulp_class(ulp) + " num", title)
