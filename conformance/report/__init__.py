"""The report: results files as a markdown or HTML page.

render.py     build() and render(): the sections in order, written as markdown or HTML
model.py      what the sections read from the records: orders, ULP errors, value formatting
blocks.py     the parts of a page (headings, tables, pictures...), independent of the format
sections.py   environment, totals, pictures, skipped checks
accuracy.py, matrix.py, layouts.py, modes.py, divergences.py, failures.py: one section each
reproduce.py  the case file, pytest id and command that rerun one check
markdown.py, html.py: the blocks written out; plots.py: the pictures (matplotlib, optional)
manifest_doc.py  docs/divergences.md, generated from the known-divergence manifest
"""
