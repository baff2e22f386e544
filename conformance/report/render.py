"""Markdown and HTML reports of one or more results files: what people read.

Sections, in order:
  1. the environment (framework versions, Keras backends, devices, date, inputs) and totals;
  2. pictures (matplotlib, optional): the article's cross-entropy curves and gradients drawn
     from the reference, and a heatmap of the matrix (framework x op, max ULP error);
  3. the accuracy table, in the style of libm's accuracy tables: the largest ULP error
     observed per framework x op x dtype, loss and gradient apart;
  4. the matrix: op x dtype x device rows, framework columns, outcomes and max ULP error;
  4a. the layouts (where checks ran sharded): framework rows, layout columns (vocab2, batch2...),
     and the bytes that crossed ranks against the O(N) floor where they were counted;
  5. who refuses undefined input (labels outside the classes or [0, 1]) and how;
  5a. the sources: each number a source printed, judged against the reference (exact,
     rounded, truncated or inexact), and how many frameworks reproduce it;
  6. the known divergences that matched (manifest entry, reason, what was observed, link),
     and the manifest entries that matched nothing;
  7. the failures, each with the input that reproduces it and a one-line pytest command;
  8. the skipped checks, counted by framework and reason.

The document is built once as a list of blocks and written out as GitHub-flavoured markdown
or as one self-contained HTML file (inline CSS, pictures embedded as base64 PNG data URIs).
For markdown, the pictures are PNG files written next to the output file and linked.
"""
from __future__ import annotations

from pathlib import Path

from conformance.core import manifest as known_divergences
from conformance.report.accuracy import accuracy
from conformance.report.blocks import Block, Heading
from conformance.report.divergences import divergences
from conformance.report.failures import failures
from conformance.report.html import to_html
from conformance.report.layouts import layouts
from conformance.report.markdown import to_markdown
from conformance.report.matrix import matrix
from conformance.report.model import ReportData, ulp_text
from conformance.report.modes import modes
from conformance.report.reproduce import case_file, pytest_id, reproduce_command
from conformance.report.sections import environment, pictures, refusals, skipped, totals
from conformance.report.sources import sources as printed_sources

__all__ = ["build", "case_file", "pytest_id", "render", "reproduce_command", "to_html", "to_markdown", "ulp_text"]


def build(env: dict | None, records: list[dict], sources: list | None = None, with_plots: bool = True) -> list[Block]:
    """The report as a list of blocks."""
    manifest, manifest_error = [], ""
    try:
        manifest = known_divergences.load()
    except known_divergences.ManifestError as exc:
        manifest_error = str(exc)  # the report still renders; the divergences section says why entries are bare
    data = ReportData(env, records, sources, manifest, manifest_error)
    plots, why = None, "not requested"
    if with_plots:
        from conformance.report import plots as plot_module  # numpy and the reference: only when drawing

        ok, why = plot_module.available()
        plots = plot_module if ok else None
    blocks: list[Block] = [Heading(1, "xent-conformance report", "top")]
    blocks += environment(data) + totals(data)
    blocks += pictures(data, plots, why)
    blocks += accuracy(data) + matrix(data) + layouts(data) + modes(data) + refusals(data) + printed_sources(data)
    blocks += divergences(data)
    blocks += failures(data)
    blocks += skipped(data)
    return blocks


def render(env: dict | None, records: list[dict], fmt: str, output: str | Path | None = None,
           sources: list | None = None, with_plots: bool = True) -> str:
    """The report as text. For markdown with an output path, pictures are written beside it."""
    blocks = build(env, records, sources, with_plots)
    if fmt == "html":
        return to_html(blocks)
    return to_markdown(blocks, output)
