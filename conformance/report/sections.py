"""The short sections of the page: environment, totals, pictures and skipped checks.

Each takes the ReportData and returns a list of blocks; render.build puts them in order.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from types import ModuleType

from conformance.report.blocks import Bullets, Cards, Cell, Code, Heading, Image, Para, Strong, Table
from conformance.report.model import DEVICE_ORDER, ReportData, heatmap_cells, in_order, ran, sorted_frameworks


def environment(data: ReportData) -> list:
    blocks: list = [Heading(2, "Environment", "environment")]
    env = data.env
    sources = data.sources
    if len(sources) > 1:
        items = []
        for path, source_env in sources:
            items.append([Code(str(path)), f": {source_env.get('date', '?')}, Python {source_env.get('python', '?')}, "
                          f"{source_env.get('platform', '?')}"])
        blocks.append(Para(f"Merged from {len(sources)} results files:"))
        blocks.append(Bullets(items))
    else:
        where = str(sources[0][0]) if sources else ""
        blocks.append(Para([f"Run {env.get('date', '?')} · Python {env.get('python', '?')} · "
                            f"{env.get('platform', '?')}" + (" · " if where else ""), Code(where) if where else ""]))
    info = env.get("frameworks", {}) or {}
    by_framework = defaultdict(list)
    for r in data.records:
        by_framework[r.get("framework")].append(r)
    rows = []
    for name in sorted_frameworks(list(info) + list(by_framework)):
        fi = info.get(name, {}) or {}
        group = by_framework.get(name, [])
        versions = [str(fi["version"])] if fi.get("version") else []  # the environment's, then any other
        versions += sorted({str(r["framework_version"]) for r in group if r.get("framework_version")} - set(versions))
        version = ", ".join(versions)
        group_ran = ran(group)
        if not version:
            version_cell = Cell(Strong("not installed"), "skip", fi.get("unavailable", ""))
        else:
            version_cell = Cell(version)
        # a process record (a pytest process of `run` that died) has no device
        devices_checked = in_order((r["device"] for r in group_ran if r.get("device")), DEVICE_ORDER)
        devices_env = [str(device) for device in fi.get("devices") or []]
        rows.append([Cell(Code(name)), version_cell, Cell(fi.get("backend", "")),
                     Cell(", ".join(devices_env) or "-"), Cell(", ".join(devices_checked) or "-"),
                     Cell(f"{len(group_ran)} / {len(group)}", "num")])
    blocks.append(Table(["framework", "version", "Keras backend", "devices seen", "devices checked",
                         "checks run / total"], rows, "env"))
    return blocks


def totals(data: ReportData) -> list:
    o = data.outcomes
    cards = [(len(data.records), "checks", ""), (o["passed"], "passed", "pass"),
             (o["failed"] + o["error"], "failed or error", "fail" if o["failed"] + o["error"] else ""),
             (o["xfailed"], "known divergences", "known"),
             (o["xpassed"], "fixed divergences (xpassed)", "xpass" if o["xpassed"] else ""),
             (o["skipped"], "skipped", "skip")]
    verdict = ("No check failed." if not data.failures else
               f"{len(data.failures)} check(s) failed, errored or passed unexpectedly: see Failures below.")
    return [Cards(cards), Para(Strong(verdict), "verdict fail" if data.failures else "verdict ok")]


def pictures(data: ReportData, plots: ModuleType | None, why: str) -> list:
    """plots is conformance.report.plots, or None when it cannot draw here (why says so)."""
    blocks: list = [Heading(2, "Pictures", "pictures")]
    if plots is None:
        # quoted: an unquoted .[report] is a glob that zsh refuses; outside a checkout only matplotlib helps
        return blocks + [Para(["Pictures omitted: ", why, ". Install the report extra (",
                               Code("pip install -e '.[report]'"), " in a checkout, else ",
                               Code("pip install 'matplotlib>=3.7'"), ") to draw them."], "note")]
    blocks.append(Para("The article's argument, drawn from the float64 reference (reference/ops/binary.py, "
                       "reference/ops/squared_error.py): cross-entropy grows without bound as the output moves to the "
                       "wrong answer, and its gradient with respect to the logit is a − y, free of the sigmoid's "
                       "derivative; the quadratic cost's gradient carries a (1 − a) and vanishes when the sigmoid "
                       "saturates."))
    blocks.append(Image("curves", plots.article_curves(),
                        "Cross-entropy over the output a for labels 0, 1/2 and 1, against the quadratic cost",
                        "Cross-entropy −[y ln a + (1 − y) ln(1 − a)] for y = 0, ½, 1 (solid) and ½ (a − y)² "
                        "(dashed)."))
    blocks.append(Image("gradients", plots.gradient_saturation(),
                        "Gradients with respect to the logit: sigmoid(z) - y against (a - y) a (1 - a)",
                        "dC/dz through a sigmoid: reference.ops.binary.sigmoid_cross_entropy_grad (σ(z) − y) and "
                        "reference.ops.squared_error.sigmoid_half_squared_error_grad ((a − y) a (1 − a))."))
    cells = heatmap_cells(data.records)
    if data.frameworks and data.ops:
        blocks.append(Image("heatmap", plots.error_heatmap(data.frameworks, data.ops, cells),
                            "Heatmap of the max ULP error per framework and op",
                            "Max ULP error of the reference checks that passed or failed, per framework and op "
                            "(loss and gradient, every dtype and device). F: failed, error or xpassed checks; "
                            "K: known divergences, whose error is not counted in the colour; hatched: nothing "
                            "ran (not offered, not installed, no device)."))
    return blocks


def skipped(data: ReportData) -> list:
    blocks: list = [Heading(2, "Skipped checks", "skipped")]
    skips = [r for r in data.records if r["outcome"] == "skipped"]
    if not skips:
        return blocks + [Para("None.", "note")]
    blocks.append(Para("Counted, never hidden: not-installed (the framework cannot be imported here), no-device "
                       "(no GPU), not-offered (no such function, dtype or autodiff), manifest (a skip entry)."))
    reasons = sorted({r.get("reason") or "?" for r in skips})
    counts = Counter((r.get("framework"), r.get("reason") or "?") for r in skips)
    rows = [[Cell(Code(f))] + [Cell(str(counts[(f, reason)]) if counts[(f, reason)] else "", "num")
                               for reason in reasons]
            + [Cell(str(sum(counts[(f, reason)] for reason in reasons)), "num")]
            for f in sorted_frameworks(r.get("framework") for r in skips)]
    blocks.append(Table(["framework"] + reasons + ["total"], rows, "skips"))
    return blocks



def refusals(data: ReportData) -> list:
    """Who refuses undefined input (labels outside the classes, binary targets or probabilities
    outside [0, 1]), and how."""
    undefined = [r for r in data.records if r.get("undefined") and r["outcome"] != "skipped"]
    if not undefined:
        return []
    blocks: list = [Heading(2, "Undefined input", "refusals"),
              Para("Cases that hold inputs outside the op's domain on purpose. A framework conforms when it "
                   "raises or returns NaN there, and fails when it returns a finite number.")]
    kinds = ("raised", "nan", "finite")
    counts = Counter((r["framework"], r.get("refused") or ("finite" if r["outcome"] in ("failed", "xfailed")
                                                           else "other")) for r in undefined)
    rows = [[Cell(Code(f))] + [Cell(str(counts[(f, kind)]) if counts[(f, kind)] else "", "num") for kind in kinds]
            for f in sorted_frameworks(r["framework"] for r in undefined)]
    blocks.append(Table(["framework", "raised", "NaN", "a finite number"], rows, "refusals"))
    return blocks
