"""Case files (YAML) -> validated Case objects.

Every refusal names the file, the case and the key, so a person can fix it without reading
this module. Nothing here imports a framework.
"""
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conformance import RESERVED_WORDS
from conformance.cases import schema, yamlio
from conformance.cases.keys import check_keys, literal_array, type_ok
from conformance.cases.pinned import parse as parse_pinned
from reference.dtypes import FLOAT_DTYPES
from reference.registry import OPS, REDUCTIONS, SHARED_OPTIONS


class CaseError(Exception):
    """A case file problem: str() is one line naming file, case and key."""

    def __init__(self, path, message, case=None, key=None, line=None):
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
    inputs: dict  # input name -> float64 (or int64 labels) array
    options: dict = field(default_factory=dict)
    dtypes: tuple = schema.DEFAULT_DTYPES
    grad: bool = True
    pinned: tuple = ()
    description: str = ""
    undefined: bool = False  # holds inputs outside the op's domain on purpose: refusing them conforms

    @property
    def prediction(self):
        return self.inputs[OPS[self.op].prediction]

    @property
    def labels(self):
        return self.inputs["labels"]


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _check_generator(spec, fail, key):
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


def _generated_array(spec, fail, key):
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


def _array(value, fail, key):
    if isinstance(value, dict):
        return _generated_array(value, fail, key)
    if isinstance(value, (list, int, float)) and not isinstance(value, bool):
        return literal_array(value, fail, key)
    fail(f"expected an array (a list of numbers or a generator mapping), got {value!r}", key)


def _check_options(op, options, prediction, fail):
    allowed = {**op.options, **SHARED_OPTIONS}
    for key in options:
        if key not in allowed:
            fail(f"unknown option for {op.name} (allowed: {', '.join(allowed)})", "options." + key)
    if "reduction" in options and options["reduction"] not in REDUCTIONS:
        fail(f"reduction must be one of {', '.join(REDUCTIONS)}, got {options['reduction']!r}", "options.reduction")
    if "half" in options and not isinstance(options["half"], bool):
        fail("half must be true or false", "options.half")
    if "axis" in options:
        axis = options["axis"]
        if not type_ok("int", axis) or not -prediction.ndim <= axis < max(prediction.ndim, 1):
            fail(f"axis {axis!r} is not an axis of the {prediction.ndim}-d {op.prediction}", "options.axis")
    if "label_smoothing" in options:
        value = options["label_smoothing"]
        if not type_ok("number", value) or not 0.0 <= value <= 1.0:
            fail(f"label_smoothing must be a number in [0, 1], got {value!r}", "options.label_smoothing")
    if "pos_weight" in options:  # a number, or one per class along the last axis (PyTorch's and TF's broadcast)
        value, classes = options["pos_weight"], prediction.shape[-1] if prediction.ndim else 0
        values = value if isinstance(value, list) else [value]
        if not (all(type_ok("number", v) and v > 0 for v in values) and values
                and (not isinstance(value, list) or len(value) == classes)):
            fail(f"pos_weight must be a positive number or a list of {classes} (one per class), got {value!r}",
                 "options.pos_weight")
    if "z_loss" in options and not (type_ok("number", options["z_loss"]) and options["z_loss"] >= 0):
        fail(f"z_loss must be a non-negative number, got {options['z_loss']!r}", "options.z_loss")
    if options.get("softcap") is not None and not (type_ok("number", options["softcap"]) and options["softcap"] > 0):
        fail(f"softcap must be a positive number, got {options['softcap']!r}", "options.softcap")
    if "ignore_index" in options and not type_ok("int", options["ignore_index"]):
        fail(f"ignore_index must be an integer, got {options['ignore_index']!r}", "options.ignore_index")
    if "sample_weight" in options:
        expected = prediction.shape
        if op.class_axis and prediction.ndim:
            expected = tuple(int(n) for n in np.delete(prediction.shape, options.get("axis", -1)))
        weights = _array(options["sample_weight"], fail, "options.sample_weight")
        if weights.shape != expected:
            fail(f"sample_weight has shape {weights.shape}; one weight per loss is {expected}", "options.sample_weight")
    if options.get("reduction") == "weighted_mean" and "sample_weight" not in options:
        fail("weighted_mean divides by the sum of sample_weight, which is missing", "options.reduction")
    if "weight" in options:
        weight = options["weight"]
        classes = prediction.shape[options.get("axis", -1)] if prediction.ndim else 0
        if not isinstance(weight, list) or len(weight) != classes or not all(type_ok("number", w) for w in weight):
            fail(f"weight must be a list of {classes} numbers, one per class", "options.weight")


def linear_logits_shape(op, arrays, fail) -> tuple[int, int]:
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


def _check_domains(op, arrays, raw, fail):
    """Inputs the op defines on [0, 1] stay there unless the case holds undefined input on purpose."""
    for name in op.unit_interval:
        values, opt_in = arrays[name], "invalid_labels" if name == "labels" else "invalid_probabilities"
        if values.size and (np.nanmin(values) < 0 or np.nanmax(values) > 1) and not raw.get(opt_in):
            fail(f"a value outside [0, 1], where {op.name} is undefined (set {opt_in}: true if that is the point)",
                 "inputs." + name)


def _check_shapes(op, prediction, labels, axis, fail, ignore_index=None, invalid_labels=False):
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


def _line(lines, path):
    """The line of the longest prefix of path that the file has (a key may be missing)."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _build_case(raw, path, index, fail_file, lines=None):
    lines = lines or {}
    if not isinstance(raw, dict):
        fail_file(f"cases[{index}] must be a mapping, got {type(raw).__name__}", None, _line(lines, f"cases[{index}]"))
    name = raw.get("name") if isinstance(raw.get("name"), str) else f"cases[{index}]"

    def fail(message, key):
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
    for key in options if op.head else ():  # its head's options, less those it does not take (axis)
        if key not in {**op.options, **SHARED_OPTIONS}:
            fail(f"unknown option for {op.name} (allowed: {', '.join({**op.options, **SHARED_OPTIONS})})",
                 "options." + key)
    _check_options(checked_as, options, logits, fail)
    axis = options.get("axis", -1)
    _check_shapes(checked_as, logits, arrays["labels"], axis, fail, options.get("ignore_index"),
                  raw.get("invalid_labels", False))
    _check_domains(op, arrays, raw, fail)
    if op.integer_labels:
        arrays["labels"] = arrays["labels"].astype(np.int64)

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
                description=raw.get("description", ""), undefined=bool(raw.get("invalid_labels") or raw.get("invalid_probabilities")))


def load_case_file(path):
    """All cases of one file, or CaseError for the first problem found."""
    path = Path(path)

    def fail_file(message, key, line=None):
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
    seen = set()
    for i, case in enumerate(cases):
        if case.name in seen:
            raise CaseError(path, "duplicate case name", case=case.name, key="name", line=_line(lines, f"cases[{i}].name"))
        seen.add(case.name)
    return cases


def case_files(paths):
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


def load_cases(paths):
    """Cases from files and folders; names must be unique across all of them."""
    cases, where = [], {}
    for path in case_files(paths):
        for case in load_case_file(path):
            if case.name in where:
                raise CaseError(path, f"case name also used in {where[case.name]}", case=case.name, key="name")
            where[case.name] = path
            cases.append(case)
    return cases
