"""The report's blocks as one self-contained HTML page: inline CSS, no script, pictures as data URIs."""
from __future__ import annotations

import base64
from html import escape

from conformance.report.blocks import (Bullets, Cards, Cell, Code, Heading, Image, Link, Para, Pre, Section, Strong,
                                       Table)

CSS = """
:root { --pass: #e8f5e9; --pass-ink: #1b5e20; --fail: #ffebee; --fail-ink: #b71c1c; --known: #f3e5f5;
  --known-ink: #6a1b9a; --xpass: #fff3e0; --xpass-ink: #e65100; --skip: #f5f5f5; --skip-ink: #9e9e9e;
  --line: #e0e0e0; --ink: #212121; --muted: #616161; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); margin: 0; background: #fafafa; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
nav { position: sticky; top: 0; z-index: 5; background: #263238; padding: 8px 32px; }
nav a { color: #eceff1; margin-right: 18px; text-decoration: none; font-size: 13px; }
nav a:hover { text-decoration: underline; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
h3 code, h2 code { font-size: inherit; }
p { margin: 6px 0 10px; max-width: 980px; }
p.note { color: var(--muted); font-style: italic; }
p.verdict { font-size: 15px; padding: 8px 12px; border-radius: 6px; display: inline-block; }
p.verdict.ok { background: var(--pass); color: var(--pass-ink); }
p.verdict.fail { background: var(--fail); color: var(--fail-ink); }
td code { white-space: nowrap; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f1f3f4;
  padding: 1px 4px; border-radius: 3px; }
pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #263238;
  color: #eceff1; padding: 10px 12px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
pre.command { white-space: pre; background: #102027; }
ul { margin: 4px 0 10px; padding-left: 22px; }
li { margin: 2px 0; }
a { color: #1565c0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 16px; min-width: 130px; background: white; }
.card b { display: block; font-size: 24px; }
.card span { color: var(--muted); font-size: 12px; }
.card.pass { background: var(--pass); border-color: #a5d6a7; }
.card.fail { background: var(--fail); border-color: #ef9a9a; color: var(--fail-ink); }
.card.known { background: var(--known); border-color: #ce93d8; }
.card.xpass { background: var(--xpass); border-color: #ffcc80; }
.card.skip { background: var(--skip); }
.scroll { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 12.5px; }
caption { caption-side: top; text-align: left; color: var(--muted); padding: 4px 0; font-style: italic; }
th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
th { background: #eceff1; text-align: left; font-weight: 600; }
tr.group td { border-top: 2px solid #b0bec5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.matrix td:nth-child(n+4), table.accuracy td:nth-child(n+3) { text-align: center; min-width: 84px;
  font-variant-numeric: tabular-nums; }
table.matrix th:nth-child(n+4), table.accuracy th:nth-child(n+3) { text-align: center; }
table.layouts td:nth-child(n+2), table.layouts th:nth-child(n+2) { text-align: center; min-width: 84px;
  font-variant-numeric: tabular-nums; }
td .sub { display: block; font-size: 11px; opacity: 0.8; }
td.pass { background: var(--pass); color: var(--pass-ink); }
td.fail { background: var(--fail); color: var(--fail-ink); font-weight: 600; }
td.known { background: var(--known); color: var(--known-ink); }
td.xpass { background: var(--xpass); color: var(--xpass-ink); font-weight: 600; }
td.skip { background: var(--skip); color: var(--skip-ink); }
td.u0 { background: #e8f5e9; } td.u1 { background: #c8e6c9; } td.u2 { background: #fff9c4; }
td.u3 { background: #ffe0b2; } td.u4 { background: #ffab91; } td.u5 { background: #e57373; color: white; }
td.fail.u0, td.fail.u1, td.fail.u2, td.fail.u3, td.fail.u4 { outline: 2px solid #c62828; outline-offset: -2px; }
.legend span { display: inline-block; padding: 1px 8px; margin: 0 4px 4px 0; border-radius: 3px; font-size: 12px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; max-width: 980px; }
section.entry, section.failure { border: 1px solid var(--line); border-left: 4px solid #ab47bc; border-radius: 6px;
  padding: 4px 16px 10px; margin: 14px 0; }
section.failure { border-left-color: #c62828; }
section h3 { margin-top: 10px; }
"""

# A row of colour swatches above a table of that class: the matrix's use the outcome colours
# of the CSS; the accuracy bands repeat td.u0 ... td.u5 inline, since a span is not a td.
_OUTCOME_SWATCHES = (("pass", "passed"), ("known", "known divergence"), ("xpass", "fixed divergence"),
                     ("fail", "failed / error"), ("skip", "nothing ran"))
_ULP_SWATCHES = (("#e8f5e9", "0"), ("#c8e6c9", "≤ 1"), ("#fff9c4", "≤ 4"), ("#ffe0b2", "≤ 16"),
                 ("#ffab91", "≤ 1000"), ("#e57373; color: white", "> 1000 ULP"))
LEGENDS = {
    "matrix": [(f'class="{cls}" style="background: var(--{cls}, transparent)"', label)
               for cls, label in _OUTCOME_SWATCHES],
    "layouts": [(f'class="{cls}" style="background: var(--{cls}, transparent)"', label)
                for cls, label in _OUTCOME_SWATCHES],
    "accuracy": [(f'style="background: {colour}"', label) for colour, label in _ULP_SWATCHES],
}


def to_html(blocks: list) -> str:
    """The page, with a navigation bar linking each second-level heading."""
    nav = "".join(f'<a href="#{escape(b.anchor)}">{escape(b.text.split(" (")[0].split(":")[0])}</a>'
                  for b in blocks if isinstance(b, Heading) and b.level == 2 and b.anchor)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>xent-conformance report</title><style>{CSS}</style></head>\n<body>"
            f"<nav>{nav}</nav><main>\n{_blocks(blocks)}\n</main></body></html>\n")


def _inline(content: object) -> str:
    if isinstance(content, list):
        return "".join(_inline(c) for c in content)
    if isinstance(content, Code):
        return f"<code>{escape(content.text)}</code>" if content.text else ""
    if isinstance(content, Link):
        return f'<a href="{escape(content.url)}">{escape(content.text)}</a>'
    if isinstance(content, Strong):
        return f"<strong>{escape(content.text)}</strong>"
    return escape(str(content if content is not None else ""))


def _cell(cell: object, tag: str = "td") -> str:
    if not isinstance(cell, Cell):
        cell = Cell(cell)
    attrs = ""
    if cell.cls:
        attrs += f' class="{escape(cell.cls)}"'
    if cell.title:
        attrs += f' title="{escape(cell.title)}"'
    sub = f'<span class="sub">{escape(cell.sub)}</span>' if cell.sub else ""
    return f"<{tag}{attrs}>{_inline(cell.content)}{sub}</{tag}>"


def _class(cls: str) -> str:
    return f' class="{cls}"' if cls else ""


def _table(table: Table) -> str:
    legend = LEGENDS.get(table.cls)
    parts = []
    if legend:
        swatches = "".join(f"<span {attrs}>{escape(label)}</span>" for attrs, label in legend)
        parts.append(f'<div class="legend">{swatches}</div>\n')
    parts.append(f'<div class="scroll"><table class="{table.cls}">')
    if table.caption:
        parts.append(f"<caption>{_inline(table.caption)}</caption>")
    parts.append("<thead><tr>" + "".join(_cell(h, "th") for h in table.header) + "</tr></thead><tbody>")
    for row in table.rows:
        cells, row_cls = row if isinstance(row, tuple) else (row, "")
        parts.append(f"<tr{_class(row_cls)}>" + "".join(_cell(c) for c in cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def _block(block: object) -> str | None:
    if isinstance(block, Heading):
        anchor = f' id="{escape(block.anchor)}"' if block.anchor else ""
        return f"<h{block.level}{anchor}>{escape(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f"<p{_class(block.cls)}>{_inline(block.content)}</p>"
    if isinstance(block, Cards):
        return '<div class="cards">' + "".join(
            f'<div class="card {cls}"><b>{n}</b><span>{escape(label)}</span></div>'
            for n, label, cls in block.items) + "</div>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        caption = f"<figcaption>{_inline(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure><img alt="{escape(block.alt)}" src="data:image/png;base64,{data}">{caption}</figure>'
    if isinstance(block, Pre):
        return f"<pre{_class(block.cls)}>{escape(block.text)}</pre>"
    if isinstance(block, Section):
        return f'<section class="{block.cls}">' + _blocks(block.blocks) + "</section>"
    return None


def _blocks(blocks: list) -> str:
    return "\n".join(part for part in map(_block, blocks) if part is not None)
