"""Safe YAML reading that does what a numerical case file needs.

PyYAML follows YAML 1.1: `1e-7` and `inf` are strings there, `1:30` is the integer 90, `0x10`
is 16, `yes` and `off` are booleans, `2024-01-01` is a date, and a repeated key silently keeps
the last value. Case files hold numbers and must never lose a key, so this loader reads
numbers, infinities and NaN deliberately (decimal integers only), booleans only as
true/false, no dates, and refuses duplicate keys. Anything else stays a string, which the
schema then refuses where a number or a boolean belongs.
"""
import os
import re
from typing import Any

import yaml


class YamlError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class CaseLoader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.?(?:inf|Inf|INF)
    |\.?(?:nan|NaN|NAN))$""",
    re.X,
)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = loader.construct_scalar(node).replace("_", "").lstrip(".")
    text = text.replace("+.", "+").replace("-.", "-")
    return float(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}  # key -> its line, counted from 0
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise YamlError(
                f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark.line + 1
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_INT = re.compile(r"^[-+]?[0-9]+$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_REPLACED = ("tag:yaml.org,2002:float", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
             "tag:yaml.org,2002:timestamp")


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node))


# Replace YAML 1.1's number, boolean and date rules with YAML 1.2's core schema (decimal
# integers, true/false), reading 1e-7, inf and nan as floats.
CaseLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CaseLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789.iInN"))
CaseLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
CaseLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
CaseLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
CaseLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
CaseLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(text: str) -> Any:
    """Parse YAML text; raises YamlError with a line number on any problem."""
    try:
        return yaml.load(text, Loader=CaseLoader)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(f"invalid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"invalid YAML: {exc}") from None


def read_text(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(f"cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from None


def load_file(path: str | os.PathLike[str]) -> Any:
    return load(read_text(path))


def key_lines(text: str) -> dict[str, int]:
    """{path: line} for every mapping key and sequence item of a YAML document, paths written
    as the schema names them (`cases[2].options.axis`); empty when the text does not parse."""
    try:
        root = yaml.compose(text, Loader=CaseLoader)
    except yaml.YAMLError:
        return {}
    lines = {}

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = f"{path}.{key_node.value}" if path else str(key_node.value)
                lines[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = f"{path}[{i}]"
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    if root is not None:
        walk(root, "")
    return lines
