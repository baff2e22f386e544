"""Safe YAML reading that does what a numerical case file needs.

PyYAML follows YAML 1.1: `1e-7` and `inf` are strings there, and a repeated key silently
keeps the last value. Case files hold numbers like these and must never lose a key, so this
loader reads numbers, infinities and NaN deliberately and refuses duplicate keys.
"""
import re

import yaml


class YamlError(Exception):
    def __init__(self, message, line=None):
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


def _construct_float(loader, node):
    text = loader.construct_scalar(node).replace("_", "").lstrip(".")
    text = text.replace("+.", "+").replace("-.", "-")
    return float(text)


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise YamlError(
                f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark.line + 1
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


# Replace YAML 1.1's float rule with one that also reads 1e-7, inf and nan.
CaseLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CaseLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789.iInN"))
CaseLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
CaseLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(text):
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


def load_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(f"cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    return load(text)
