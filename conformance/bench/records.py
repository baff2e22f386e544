"""The benchmark records a report is made of: pytest-benchmark JSON files with the skips beside
them, and what every view of them shares (modes, grouping, the order of frameworks).
"""
import json
from collections import defaultdict
from pathlib import Path

from conformance import frameworks
from conformance.bench.settings import REFERENCE

MODES = {"fwd": "forward", "fwdbwd": "forward+backward"}


class ReportError(Exception):
    pass


def load(paths):
    """(benchmarks, skips, machines) from pytest-benchmark JSON files, each with the skips
    beside it (<name>.skips.json); a skips file given on its own (a process that timed
    nothing writes no JSON) is read as well."""
    benchmarks, skips, machines = [], [], []
    given = {Path(name).resolve() for name in paths}
    for name in paths:
        path = Path(name)
        if path.name.endswith(".skips.json"):
            if path.with_name(path.name.removesuffix(".skips.json") + ".json").resolve() not in given:
                skips += _skips(path)
            continue
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReportError(f"{path}: cannot read a pytest-benchmark JSON file ({exc})") from None
        if not isinstance(document, dict) or "benchmarks" not in document:
            raise ReportError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks')")
        machines.append(document.get("machine_info", {}))
        for entry in document["benchmarks"]:
            info = dict(entry.get("extra_info") or {})
            if "framework" not in info:
                continue
            info.setdefault("median_s", entry["stats"]["median"])
            info.setdefault("min_s", entry["stats"]["min"])
            info["name"] = entry.get("name", "")
            info["source"] = path.name
            benchmarks.append(info)
        skips += _skips(path.with_name(path.name.removesuffix(".json") + ".skips.json"))
    return benchmarks, skips, machines


def _skips(path):
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text()).get("skipped", [])
    except (OSError, ValueError):
        return []


def framework_rank(name):
    """The suite's framework order (its table, then plug-ins alphabetically): none is dropped."""
    return frameworks.order_key(name)


def by(items, keys):
    groups = defaultdict(list)
    for b in items:
        groups[tuple(b.get(k) for k in keys)].append(b)
    return groups


def itemsize(dtype):
    return {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}.get(dtype, 4)


def skip_framework(skip, known=()):
    """The framework a skip belongs to: recorded with it, else the longest known id its test id starts with."""
    if skip.get("framework"):
        return skip["framework"]
    ident = case_id(skip)
    candidates = sorted({*frameworks.BUILTIN_IDS, *known}, key=len, reverse=True)
    return next((f for f in candidates if ident.startswith(f + "-")), ident)


def case_id(skip):
    return skip["nodeid"].split("[")[-1].rstrip("]")


def is_reference(skip):
    return skip_framework(skip) == REFERENCE or case_id(skip).startswith(REFERENCE + "-")
