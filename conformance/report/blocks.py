"""The parts of a report page, independent of the format it is written in.

Sections build a list of these; markdown.py and html.py write the same list out. Inline
content is a str (literal text), Code, Link, Strong, or a list of them.
"""
from dataclasses import dataclass, field

# --- inline text: a str is literal; these mark code, links and emphasis ---------------------


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass
class Cell:
    content: object = ""  # inline: str, Code, Link, Strong or a list of them
    cls: str = ""  # CSS class (HTML only)
    title: str = ""  # tooltip (HTML only)
    sub: str = ""  # a second, smaller line (" · sub" in markdown)


# --- blocks -----------------------------------------------------------------------------------


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    content: object
    cls: str = ""


@dataclass
class Bullets:
    items: list


@dataclass
class Table:
    header: list
    rows: list  # lists of Cell (or inline content); a row may be (cells, row_class)
    cls: str = ""
    caption: object = ""


@dataclass
class Image:
    key: str
    png: bytes
    alt: str
    caption: object = ""


@dataclass
class Pre:
    text: str
    cls: str = ""


@dataclass
class Cards:
    items: list  # (number, label, css class)


@dataclass
class Section:
    """A box around a group of blocks (a known divergence, a failure): <section> / a rule."""
    blocks: list = field(default_factory=list)
    cls: str = ""


Block = Heading | Para | Bullets | Table | Image | Pre | Cards | Section  # what a section's list holds
