"""The matrix section: op x dtype x device rows, framework columns, outcomes counted per cell."""
from collections import Counter, defaultdict

from conformance.report.blocks import Cell, Code, Heading, Para, Table
from conformance.report.model import ReportData, compared_ulps, count_text, first_line, max_ulp, ran, ulp_text

LETTERS = {"passed": "P", "failed": "F", "error": "E", "xfailed": "K", "xpassed": "X", "skipped": "S"}


def matrix(data: ReportData) -> list:
    """Every framework is a column, plug-in ids included; rows where nothing ran are counted in a note."""
    blocks = [Heading(2, "Matrix: op x framework x dtype x device", "matrix"),
              Para(["Each cell counts the checks (loss and gradient, every case) by outcome: P passed, F failed, "
                    "E error, K known divergence, X fixed divergence (a strict xfail that passed), S skipped; "
                    "then the max ULP error of the reference checks that passed or failed. "
                    "- : nothing ran (the reasons are counted under Skipped checks)."])]
    groups = defaultdict(list)
    for r in data.records:
        groups[(r.get("op"), r.get("dtype"), r.get("device"), r.get("framework"))].append(r)
    rows: list = []
    omitted: Counter[tuple[str, str]] = Counter()
    for op in data.ops:
        first = True
        for dtype in data.dtypes:
            for device in data.devices:
                row_records = [r for f in data.frameworks for r in groups.get((op, dtype, device, f), [])]
                if not row_records:
                    continue
                if not ran(row_records):
                    for r in row_records:
                        omitted[(device, r.get("reason") or "?")] += 1
                    continue
                cells = [Cell(Code(op) if first else ""), Cell(dtype), Cell(device)]
                cells += [outcome_cell(groups.get((op, dtype, device, f), [])) for f in data.frameworks]
                rows.append((cells, "group" if first else ""))
                first = False
    blocks.append(Table(["op", "dtype", "device"] + list(data.frameworks), rows, "matrix"))
    if omitted:
        parts = ", ".join(f"{n} on {device} ({reason})" for (device, reason), n in sorted(omitted.items()))
        blocks.append(Para(f"Rows where no framework ran a check are left out: {parts}.", "note"))
    return blocks


def outcome_cell(group: list) -> Cell:
    """A group of checks counted by outcome (3P 1K 2S), coloured by the worst, with the max ULP
    error of its reference checks beneath: the matrix's cell, and the layouts table's."""
    if not group:
        return Cell("")
    outcomes = Counter(r["outcome"] for r in group)
    ran_counts = {o: n for o, n in outcomes.items() if o != "skipped"}
    if not ran_counts:
        reasons = Counter(f"{r.get('reason') or '?'}: {first_line(r.get('message'))}" for r in group)
        return Cell("-", "skip", "; ".join(f"{n}x {text}" for text, n in reasons.most_common(3)))
    text = " ".join(f"{n}{LETTERS[o]}"
                    for o, n in sorted(ran_counts.items(), key=lambda kv: "PFEKXS".index(LETTERS[kv[0]])))
    if outcomes["skipped"]:
        text += f" {outcomes['skipped']}S"
    if outcomes["failed"] or outcomes["error"]:
        cls = "fail"
    elif outcomes["xpassed"]:
        cls = "xpass"
    elif outcomes["xfailed"]:
        cls = "known"
    else:
        cls = "pass"
    ulp = max_ulp(compared_ulps(group))
    title = "; ".join(count_text(n, o) for o, n in outcomes.items())
    return Cell(text, cls, title, (ulp_text(ulp) + " ulp") if ulp is not None else "")
