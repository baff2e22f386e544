"""The report's blocks as GitHub-flavoured markdown; pictures are PNG files beside the output."""
from __future__ import annotations

import re
from pathlib import Path

from conformance.report.blocks import (Bullets, Cards, Cell, Code, Heading, Image, Link, Para, Pre, Section, Strong,
                                       Table)


def _text(text: str) -> str:
    """Literal text in markdown: escape what GitHub would read as markup, and little else."""
    for char in "\\`*<|":
        text = text.replace(char, "\\" + char)
    text = re.sub(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", r"\\_", text)  # intraword _ is literal in GFM
    return re.sub(r"\](?=[(\[])", r"\\]", text)  # no [text](url) or [text][ref] by accident


def _inline(content: object) -> str:
    if isinstance(content, list):
        return "".join(_inline(c) for c in content)
    if isinstance(content, Code):
        fence = "``" if "`" in content.text else "`"
        pad = " " if fence == "``" else ""
        return f"{fence}{pad}{content.text}{pad}{fence}" if content.text else ""
    if isinstance(content, Link):
        return f"[{_text(content.text)}]({content.url})"
    if isinstance(content, Strong):
        return f"**{_text(content.text)}**"
    if isinstance(content, Cell):
        text = _inline(content.content)
        return text + (f" · {_text(content.sub)}" if content.sub else "")
    return _text(str(content if content is not None else ""))


def _cell(content: object) -> str:
    """A table cell on one line. Plain header text gets its pipes escaped once more than a Cell's."""
    text = _inline(content).replace("\n", " ")
    return text if isinstance(content, Cell) else text.replace("|", "\\|")


def to_markdown(blocks: list, output: str | Path | None = None) -> str:
    """Markdown text; with an output path, each Image is written next to it as STEM-KEY.png."""
    lines = []
    out_dir = Path(output).resolve().parent if output else None
    stem = Path(output).stem if output else ""
    for block in blocks:
        if isinstance(block, Heading):
            if block.anchor.startswith("div-"):  # the known-divergence summary links here
                lines += [f'<a id="{block.anchor}"></a>', ""]
            lines += ["#" * block.level + " " + _text(block.text), ""]
        elif isinstance(block, Para):
            lines += [_inline(block.content), ""]
        elif isinstance(block, Cards):
            lines += ["; ".join(f"**{n}** {label}" for n, label, _ in block.items), ""]
        elif isinstance(block, Bullets):
            lines += [f"- {_inline(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"*{_inline(block.caption)}*", ""]
            lines.append("| " + " | ".join(_cell(h) for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            for row in block.rows:
                cells = row[0] if isinstance(row, tuple) else row
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines.append("")
        elif isinstance(block, Image):
            if out_dir is None:
                lines += [f"*Picture \"{block.alt}\" omitted: markdown pictures are written next to the file "
                          f"given with -o.*", ""]
                continue
            name = f"{stem}-{block.key}.png"
            (out_dir / name).write_bytes(block.png)
            lines += [f"![{block.alt}]({name})", ""]
            if block.caption:
                lines += [f"*{_inline(block.caption)}*", ""]
        elif isinstance(block, Pre):
            fence = "````" if "```" in block.text else "```"
            lines += [fence + "text", block.text, fence, ""]
        elif isinstance(block, Section):
            lines += to_markdown(block.blocks, output).rstrip("\n").splitlines() + [""]
    return "\n".join(lines).rstrip("\n") + "\n"

