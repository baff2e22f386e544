"""The compiled-and-eager section: where a framework ran one call several ways (torch.compile,
jax.jit, tf.function, XLA) and the ways disagree, by the ULP verdict and by the relative view
compiler maintainers use (torch._dynamo.utils.same: compiled error at most 2x eager's)."""
from __future__ import annotations

import math
from collections import defaultdict

from conformance.report.blocks import Cell, Code, Heading, Para, Table
from conformance.report.model import ReportData, sorted_frameworks, ulp_text
from conformance.results.records import read_number

MAX_ROWS = 40  # disagreeing checks listed


def _verdict(mode: dict) -> str:
    """The mode's own verdict; newer records also say when it raised instead of returning values."""
    return "raised" if mode.get("raised") else "passed" if mode.get("passed") else "failed"


def _ulps_differ(mode: dict, eager: dict) -> bool:
    """Whether two modes' ULP errors differ, read as numbers (1 and 1.0 agree, so do two NaNs)."""
    a, b = read_number(mode.get("max_ulp_err")), read_number(eager.get("max_ulp_err"))
    if a is None or b is None:
        return (a is None) != (b is None)
    return a != b and not (math.isnan(a) and math.isnan(b))


def _same(mode: dict) -> str:
    same = mode.get("same_as_eager")
    return "accepts" if same is True else "rejects" if same is False else ""


def modes(data: ReportData) -> list:
    runs = [r for r in data.records if isinstance(r.get("modes"), dict) and "eager" in r["modes"]]
    if not runs:
        return []
    blocks = [Heading(2, "Compiled and eager", "modes"),
              Para(["Checks a framework ran eagerly and another way. A check passes only when every way does. "
                    "Beside the ULP verdict, the relative view of ", Code("torch._dynamo.utils.same"),
                    ": a compiled result is accepted when it is allclose to eager's (1e-4) or its RMS error "
                    "against the reference is at most 2x eager's (3x for half precision or under 1,000 "
                    "elements) plus 1e-5. It says whether compiling made a result worse, not whether it is right."])]
    # (framework, mode) -> checks, ULPs differ, verdicts differ, rejected
    counts: defaultdict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    disagreeing = []
    for r in runs:
        eager = r["modes"]["eager"]
        for name, mode in r["modes"].items():
            if name == "eager":
                continue
            row = counts[(r["framework"], name)]
            row[0] += 1
            row[1] += _ulps_differ(mode, eager)
            split = mode.get("passed") != eager.get("passed")
            row[2] += split
            row[3] += mode.get("same_as_eager") is False
            if split or mode.get("same_as_eager") is False:
                disagreeing.append((r, name, eager, mode))
    rows = [[Cell(Code(framework)), Cell(Code(name))] + [Cell(str(n), "num") for n in counts[(framework, name)]]
            for framework in sorted_frameworks({f for f, _ in counts}) for name in sorted(
                {m for f, m in counts if f == framework})]
    blocks.append(Table(["framework", "mode", "checks", "ULP errors differ", "verdicts differ",
                         "relative view rejects"], rows, "modes"))
    if not disagreeing:
        return blocks + [Para("In no check do the verdicts differ or does the relative view reject the compiled "
                              "result.", "note")]
    rows = [[Cell(Code(r["id"])), Cell(Code(name)), Cell(ulp_text(eager.get("max_ulp_err")), "num"),
             Cell(ulp_text(mode.get("max_ulp_err")), "num"), Cell(_verdict(eager)), Cell(_verdict(mode)),
             Cell(_same(mode))] for r, name, eager, mode in disagreeing[:MAX_ROWS]]
    blocks.append(Table(["check", "mode", "eager ULP", "its ULP", "eager", "it", "relative view"], rows,
                        "modes-disagree"))
    if len(disagreeing) > MAX_ROWS:
        blocks.append(Para(f"... and {len(disagreeing) - MAX_ROWS} more (the results file has each).", "note"))
    return blocks
