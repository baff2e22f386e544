"""Case files (YAML) -> validated Case objects.

Every refusal names the file, the case and the key, so a person can fix it without reading
this module. Nothing here imports a framework.
"""
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from conformance import RESERVED_WORDS
from conformance.cases import schema, yamlio
from conformance.cases.keys import Fail, check_keys, literal_array, type_ok
from conformance.cases.option_values import check_options
from conformance.cases.pinned import Pinned, parse as parse_pinned
from conformance.sharded.layouts import Layout, LayoutError, check_shape, parse_layout
from reference.declaration import Op
from reference.dtypes import FLOAT_DTYPES
from reference.registry import OPS


class CaseError(Exception):
    """A case file problem: str() is one line naming file, case and key."""

    def __init__(self, path: str | os.PathLike[str], message: str, case: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        where = str(path) + (f":{line}" if line else "")
        if case is not None:
            where += f": case {case!r}"
        if key is not None:
            where += f": key {key!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Case:
    name: str
    op: str
    path: str
    inputs: dict[str, np.ndarray]  # input name -> float64 (or int64 labels) array
    options: dict[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = schema.DEFAULT_DTYPES
    grad: bool = True
    pinned: tuple[Pinned, ...] = ()
    description: str = ""
    undefined: bool = False  # holds inputs outside the op's domain on purpose: refusing them conforms
    layouts: tuple[Layout, ...] = ()  # how its inputs are also split across ranks (frameworks that take layouts)

    @property
    def prediction(self) -> np.ndarray:
        return self.inputs[OPS[self.op].prediction]

    @property
    def labels(self) -> np.ndarray:
        return self.inputs["labels"]


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# fail_file(message, key, line): raises the file's CaseError, naming the key and its line where known.
FailFile = Callable[[str, str | None, int | None], NoReturn]


def _check_generator(spec: Mapping[str, Any], fail: Fail, key: str) -> None:
    """Refuse parameters NumPy would raise on, or that draw something else than asked."""
    kind = spec["generate"]
    if kind not in schema.GENERATORS:
        fail(f"unknown generator {kind!r} (known: {', '.join(schema.GENERATORS)})", key + ".generate")
    shape = spec["shape"]
    if not all(type_ok("int", n) and n >= 0 for n in shape):
        fail(f"shape must be a list of non-negative integers, got {shape!r}", key + ".shape")
    if spec["seed"] < 0:
        fail(f"seed must be a non-negative integer, got {spec['seed']!r}", key + ".seed")
    for name in ("mean", "std", "low", "high", "offset"):
        if name in spec and not math.isfinite(spec[name]):
            fail(f"{name} must be a finite number, got {spec[name]!r}", f"{key}.{name}")
    if spec.get("std", 1.0) < 0:
        fail(f"std must be non-negative, got {spec['std']!r}", key + ".std")
    if kind in ("uniform", "integers") and "high" in spec and spec.get("low", 0.0) >= spec["high"]:
        fail(f"low ({spec.get('low', 0.0)!r}) must be below high ({spec['high']!r})", key + ".high")
    if kind == "integers":
        if "high" not in spec:
            fail("integers needs `high` (exclusive)", key + ".high")
        if not all(type_ok("int", spec[name]) for name in ("low", "high") if name in spec):
            fail("integers takes integer bounds", key + ".low" if "low" in spec else key + ".high")
    if "axis" in spec and not (kind == "simplex" and shape and -len(shape) <= spec["axis"] < len(shape)):
        fail(f"axis {spec['axis']!r} is not an axis of a simplex of shape {shape!r}", key + ".axis")


def _generated_array(spec: Mapping[str, Any], fail: Fail, key: str) -> np.ndarray:
    check_keys(spec, schema.GENERATOR_KEYS, fail, key + ".")
    _check_generator(spec, fail, key)
    kind = spec["generate"]
    shape = spec["shape"]
    rng = np.random.default_rng(spec["seed"])
    if kind == "normal":
        out = rng.normal(spec.get("mean", 0.0), spec.get("std", 1.0), shape)
    elif kind == "uniform":
        out = rng.uniform(spec.get("low", 0.0), spec.get("high", 1.0), shape)
    elif kind == "integers":
        out = rng.integers(int(spec.get("low", 0)), int(spec["high"]), shape).astype(np.float64)
    elif kind == "bernoulli":
        out = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    else:  # simplex: positive values that sum to 1 along an axis
        raw = rng.exponential(size=shape)
        total = np.sum(raw, axis=spec.get("axis", -1), keepdims=True)
        out = raw / np.where(total == 0, 1.0, total)
    return out + spec.get("offset", 0.0)


def _array(value: object, fail: Fail, key: str) -> np.ndarray:
    if isinstance(value, dict):
        return _generated_array(value, fail, key)
    if isinstance(value, (list, int, float)) and not isinstance(value, bool):
        return literal_array(value, fail, key)
    fail(f"expected an array (a list of numbers or a generator mapping), got {value!r}", key)


def linear_logits_shape(op: Op, arrays: Mapping[str, np.ndarray], fail: Fail) -> tuple[int, int]:
    """(N, V): the logits hidden [N, H] @ linear_weight [V, H].T (+ linear_bias [V]) make."""
    hidden, weight = arrays[op.prediction], arrays["linear_weight"]
    if hidden.ndim != 2:
        fail(f"expected a 2-d [tokens, hidden] array, got shape {hidden.shape}", "inputs." + op.prediction)
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[1]:
        fail(f"expected a 2-d [classes, {hidden.shape[1]}] array (one row per class, as long as a hidden "
             f"row), got shape {weight.shape}", "inputs.linear_weight")
    if "linear_bias" in arrays and arrays["linear_bias"].shape != (weight.shape[0],):
        fail(f"expected one bias per class, shape ({weight.shape[0]},), got {arrays['linear_bias'].shape}",
             "inputs.linear_bias")
    return hidden.shape[0], weight.shape[0]


def _check_domains(op: Op, arrays: Mapping[str, np.ndarray], raw: Mapping[str, Any], fail: Fail) -> None:
    """Inputs the op defines on [0, 1] stay there unless the case holds undefined input on purpose."""
    for name in op.unit_interval:
        values, opt_in = arrays[name], "invalid_labels" if name == "labels" else "invalid_probabilities"
        if values.size and (np.nanmin(values) < 0 or np.nanmax(values) > 1) and not raw.get(opt_in):
            fail(f"a value outside [0, 1], where {op.name} is undefined (set {opt_in}: true if that is the point)",
                 "inputs." + name)


def _check_shapes(op: Op, prediction: np.ndarray, labels: np.ndarray, axis: int, fail: Fail,
                  ignore_index: int | None = None, invalid_labels: bool = False) -> None:
    if op.class_axis and prediction.ndim == 0:
        fail(f"{op.prediction} needs a class axis, got a scalar", "inputs." + op.prediction)
    if op.integer_labels:
        expected = tuple(int(n) for n in np.delete(prediction.shape, axis)) if prediction.ndim else ()
        if labels.shape != expected:
            fail(f"shape {labels.shape} does not match {op.prediction} {prediction.shape} "
                 f"without its class axis {axis}: expected {expected}", "inputs.labels")
        if labels.size and (np.any(labels != np.round(labels)) or not np.all(np.isfinite(labels))):
            fail("integer labels hold a non-integer value", "inputs.labels")
        classes = prediction.shape[axis]
        counted = labels[labels != ignore_index] if ignore_index is not None else labels
        if counted.size and (counted.min() < 0 or counted.max() >= classes) and not invalid_labels:
            fail(f"label out of range [0, {classes}) (set invalid_labels: true if that is the point)", "inputs.labels")
    elif labels.shape != prediction.shape:
        fail(f"shape {labels.shape} does not match {op.prediction} {prediction.shape}", "inputs.labels")


def _layouts(raw: object, op: Op, logits: np.ndarray, axis: int, fail: Fail) -> tuple[Layout, ...]:
    """The case's `layouts`, each one its prediction's shape can take, none twice."""
    if not isinstance(raw, list):
        fail(f"expected a list of layouts such as [{{vocab: 2}}, {{batch: 2}}], got {raw!r}", "layouts")
    found: list[Layout] = []
    for i, entry in enumerate(raw):
        key = f"layouts[{i}]"
        try:
            layout = parse_layout(entry, where=key)
            if layout.axis == "vocab" and not op.class_axis:
                raise LayoutError(f"{key}: {op.name} has no class axis to split")
            check_shape(layout, logits.shape, axis, where=key)
        except LayoutError as exc:
            fail(str(exc).removeprefix(f"{key}: "), key)
        if layout in found:
            fail(f"{layout.name} is listed twice", key)
        found.append(layout)
    return tuple(found)


def _line(lines: Mapping[str, int], path: str) -> int | None:
    """The line of the longest prefix of path that the file has (a key may be missing)."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _build_case(raw: object, path: str | os.PathLike[str], index: int, fail_file: FailFile,
                lines: Mapping[str, int] | None = None) -> Case:
    lines = lines or {}
    if not isinstance(raw, dict):
        fail_file(f"cases[{index}] must be a mapping, got {type(raw).__name__}", None, _line(lines, f"cases[{index}]"))
    given_name = raw.get("name")
    name = given_name if isinstance(given_name, str) else f"cases[{index}]"

    def fail(message: str, key: str) -> NoReturn:
        raise CaseError(path, message, case=name, key=key, line=_line(lines, f"cases[{index}].{key}"))

    check_keys(raw, schema.CASE_KEYS, fail)
    if not _NAME.match(name):
        fail("name must be lower-case letters, digits, '-', '_' or '.'", "name")
    for word in RESERVED_WORDS:
        if word in name:
            fail(f"name contains the framework name {word!r}; `pytest -k` would select it", "name")
    if raw["op"] not in OPS:
        fail(f"unknown op {raw['op']!r} (known: {', '.join(OPS)})", "op")
    op = OPS[raw["op"]]

    inputs = raw["inputs"]
    for key in inputs:
        if key not in op.inputs:
            fail(f"unknown input for {op.name} (expected {', '.join(op.inputs)})", "inputs." + str(key))
    for key in op.inputs:
        if key not in inputs and key not in op.optional_tensors:
            fail(f"missing input for {op.name}", "inputs." + key)
    arrays = {key: _array(inputs[key], fail, "inputs." + key) for key in op.inputs if key in inputs}

    options = raw.get("options", {})
    # An op with a head is checked as its head on logits of the shape its inputs make.
    checked_as, logits = (op, arrays[op.prediction]) if op.head is None else (
        OPS[op.head], np.zeros(linear_logits_shape(op, arrays, fail)))
    check_options(op, checked_as, options, logits, fail, _array)
    axis = options.get("axis", -1)
    _check_shapes(checked_as, logits, arrays["labels"], axis, fail, options.get("ignore_index"),
                  raw.get("invalid_labels", False))
    _check_domains(op, arrays, raw, fail)
    if op.integer_labels:
        arrays["labels"] = arrays["labels"].astype(np.int64)
    layouts = _layouts(raw["layouts"], checked_as, logits, axis, fail) if "layouts" in raw else ()

    dtypes = raw.get("dtypes", list(schema.DEFAULT_DTYPES))
    if not dtypes:
        fail("an empty list checks nothing (leave the key out for the default float32, float64)", "dtypes")
    for i, dtype in enumerate(dtypes):
        if dtype not in FLOAT_DTYPES:
            fail(f"unknown dtype {dtype!r} (known: {', '.join(FLOAT_DTYPES)})", f"dtypes[{i}]")
        if dtype in dtypes[:i]:
            fail(f"{dtype} is listed twice", f"dtypes[{i}]")

    if op.head and raw.get("pinned"):
        fail(f"{op.name} pins no numbers of its own: pin a source's number on a {op.head} case of its logits",
             "pinned")
    pinned = [parse_pinned(entry, f"pinned[{i}]", op, arrays, options, raw.get("grad", True), fail)
              for i, entry in enumerate(raw.get("pinned", []))]

    return Case(name=name, op=op.name, path=str(path), inputs=arrays, options=dict(options),
                dtypes=tuple(dtypes), grad=raw.get("grad", True), pinned=tuple(pinned),
                description=raw.get("description", ""),
                undefined=bool(raw.get("invalid_labels") or raw.get("invalid_probabilities")), layouts=layouts)


def load_case_file(path: str | os.PathLike[str]) -> list[Case]:
    """All cases of one file, or CaseError for the first problem found."""
    path = Path(path)

    def fail_file(message: str, key: str | None, line: int | None = None) -> NoReturn:
        raise CaseError(path, message, key=key, line=line)

    try:
        text = yamlio.read_text(path)
        data = yamlio.load(text)
    except yamlio.YamlError as exc:
        fail_file(str(exc), None, exc.line)
    lines = yamlio.key_lines(text)
    if not isinstance(data, dict):
        fail_file("a case file is a mapping with `schema` and `cases`", None)
    check_keys(data, schema.FILE_KEYS, lambda message, key: fail_file(message, key, _line(lines, key)))
    if data["schema"] != 1:
        fail_file(f"unsupported schema {data['schema']} (this suite reads schema 1)", "schema", _line(lines, "schema"))
    cases = [_build_case(raw, path, i, fail_file, lines) for i, raw in enumerate(data["cases"])]
    seen: set[str] = set()
    for i, case in enumerate(cases):
        if case.name in seen:
            raise CaseError(path, "duplicate case name", case=case.name, key="name",
                            line=_line(lines, f"cases[{i}].name"))
        seen.add(case.name)
    return cases


def case_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """YAML files named directly or found (sorted) under folders."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.exists():
            files.append(path)
        else:
            raise CaseError(path, "no such file or folder")
    return files


def load_cases(paths: Iterable[str | os.PathLike[str]]) -> list[Case]:
    """Cases from files and folders; names must be unique across all of them."""
    cases: list[Case] = []
    where: dict[str, Path] = {}
    for path in case_files(paths):
        for case in load_case_file(path):
            if case.name in where:
                raise CaseError(path, f"case name also used in {where[case.name]}", case=case.name, key="name")
            where[case.name] = path
            cases.append(case)
    return cases
