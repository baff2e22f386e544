"""JSON Schemas generated from the suite's own schema data: one for case files (editors pick
it up through a `# yaml-language-server: $schema=...` line) and one for results files.

`validate` stays the authority on case files (it also checks shapes, label ranges, and the
values an option takes that depend on them: an axis, one weight per class); the schema gives an
editor completion and the same key checks. The options' part is read from their declarations
(reference/option_declaration.py): each option's values, default and the ops that take it.

    xent-conformance schema cases [-o FILE]      xent-conformance schema results [-o FILE]
"""
from __future__ import annotations

import json

from conformance.cases import schema
from conformance.core import quantities
from conformance.core.failure_kinds import KINDS
from conformance.core.goldens import VERDICTS
from conformance.results.records import OUTCOMES, SCHEMA
from conformance.sharded.layouts import AXES
from reference.dtypes import FLOAT_DTYPES
from reference.option_declaration import Option
from reference.registry import OPS, SHARED_OPTIONS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "number": "number", "list": "array",
              "mapping": "object", "number_or_list": ["number", "array"]}


def _bounded_number(option: Option) -> dict:
    bounds: dict[str, object] = {"type": "number"}
    if option.minimum is not None:
        bounds["exclusiveMinimum" if option.exclusive_minimum else "minimum"] = option.minimum
    if option.maximum is not None:
        bounds["maximum"] = option.maximum
    return bounds


# an option's kind (reference/option_declaration.py) -> the JSON Schema of its value
VALUE_SCHEMAS = {
    "number": _bounded_number,
    "integer": lambda option: {"type": "integer"},
    "axis": lambda option: {"type": "integer"},
    "boolean": lambda option: {"type": "boolean"},
    "choice": lambda option: {"enum": list(option.choices)},
    "per_class": lambda option: {"type": "array", "items": {"type": "number"}},
    "number_or_per_class": lambda option: {"anyOf": [
        _bounded_number(option), {"type": "array", "items": _bounded_number(option), "minItems": 1}]},
    "per_loss": lambda option: {"$ref": "#/$defs/array"},
}


def option_schema(option: Option) -> dict:
    """The value an option takes, its description (with the ops that take it) and default."""
    value = VALUE_SCHEMAS[option.kind](option)
    if option.nullable:
        value = {"anyOf": [value, {"type": "null"}]}
    takers = [op.name for op in OPS.values() if option.name in op.options]
    taken_by = "every op" if option.name in SHARED_OPTIONS else ", ".join(takers)
    value["description"] = f"{option.description} (taken by: {taken_by})"
    if option.default is not None:
        value["default"] = option.default
    return value


def declared_options() -> dict[str, Option]:
    """Every op's option declarations by name; one name is one declaration."""
    options: dict[str, Option] = {}
    for op in OPS.values():
        for name, option in {**op.options, **SHARED_OPTIONS}.items():
            if options.setdefault(name, option) is not option:
                raise ValueError(f"two declarations of the option {name!r}: declare it once and list it on each op")
    return dict(sorted(options.items()))


def _options_by_op() -> list[dict]:
    """Each op's case takes its own options only."""
    return [{"if": {"properties": {"op": {"const": op.name}}, "required": ["op"]},
             "then": {"properties": {"options": {"propertyNames": {"enum": [*op.options, *SHARED_OPTIONS]}}}}}
            for op in OPS.values()]


def _object(keys: dict, overrides: dict | None = None) -> dict:
    """An object schema from a (type, required, description) table."""
    properties = {}
    for name, (kind, _, description) in keys.items():
        properties[name] = {"type": JSON_TYPES[kind], "description": description}
    properties.update(overrides or {})
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [name for name, (_, required, _) in keys.items() if required]}


def case_file_schema() -> dict:
    inputs = sorted({name for op in OPS.values() for name in op.inputs})
    generator = _object(schema.GENERATOR_KEYS, {"generate": {"enum": list(schema.GENERATORS)},
                                                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                                "seed": {"type": "integer", "minimum": 0}})
    case = _object(schema.CASE_KEYS, {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$", "description": schema.CASE_KEYS["name"][2]},
        "op": {"enum": list(OPS), "description": schema.CASE_KEYS["op"][2]},
        "inputs": {"type": "object", "additionalProperties": False,
                   "properties": {name: {"$ref": "#/$defs/array"} for name in inputs}},
        "options": {"type": "object", "additionalProperties": False,
                    "properties": {name: option_schema(option) for name, option in declared_options().items()}},
        "dtypes": {"type": "array", "items": {"enum": list(FLOAT_DTYPES)}, "minItems": 1, "uniqueItems": True},
        "layouts": {"type": "array", "description": schema.CASE_KEYS["layouts"][2], "uniqueItems": True, "items": {
            "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
            "properties": {axis: {"type": "integer", "minimum": 1} for axis in AXES}}},
        "pinned": {"type": "array", "items": _object(schema.PINNED_KEYS, {
            "dtype": {"enum": list(FLOAT_DTYPES)}, "quantity": {"enum": list(schema.PINNED_QUANTITIES)},
            "value": {"anyOf": [{"type": "number"}, {"$ref": "#/$defs/nested"}],
                      "description": schema.PINNED_KEYS["value"][2]},
            "digits": {"type": "integer", "minimum": 1, "maximum": schema.MAX_PRINTED_DIGITS,
                       "description": schema.PINNED_KEYS["digits"][2]},
            "decimals": {"type": "integer", "minimum": 0, "maximum": schema.MAX_PRINTED_DECIMALS,
                         "description": schema.PINNED_KEYS["decimals"][2]},
            "rel": {"type": "number", "minimum": 0, "description": schema.PINNED_KEYS["rel"][2]},
            "abs": {"type": "number", "minimum": 0, "description": schema.PINNED_KEYS["abs"][2]}})},
    })
    case["allOf"] = _options_by_op()
    return {
        "$schema": DRAFT, "title": "xent-conformance case file", "type": "object", "additionalProperties": False,
        "properties": {**_object(schema.FILE_KEYS)["properties"], "schema": {"const": 1},
                       "cases": {"type": "array", "items": {"$ref": "#/$defs/case"}}},
        "required": [name for name, (_, required, _) in schema.FILE_KEYS.items() if required],
        "$defs": {
            "case": case,
            "generator": generator,
            "array": {"description": "a number, a nested list of numbers, or a seeded generator",
                      "anyOf": [{"$ref": "#/$defs/float"}, {"$ref": "#/$defs/nested"}, {"$ref": "#/$defs/generator"}]},
            "nested": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/float"}, {"$ref": "#/$defs/nested"}]}},
            # The loader reads inf, -inf and nan (and YAML's .inf, -.inf, .nan) as numbers; an editor
            # reading YAML 1.2 sees the first ones as strings: both are accepted.
            "float": {"anyOf": [{"type": "number"}, {"enum": list(NON_FINITE_WORDS)}]},
        },
    }


# the infinities and NaN the case loader reads (cases/yamlio.py) where YAML 1.2 sees strings
NON_FINITE_WORDS = tuple(f"{sign}{word}" for word in ("inf", "Inf", "INF") for sign in ("", "+", "-")) + (
    "nan", "NaN", "NAN")


def results_schema() -> dict:
    number = {"description": "a float; NaN and infinities are the strings nan, inf and -inf",
              "anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}, {"type": "null"}]}
    summary = {"type": ["object", "null"], "properties": {
        "shape": {"type": "array", "items": {"type": "integer"}}, "dtype": {"type": "string"},
        "worst": {"$ref": "#/$defs/number"}, "index": {"type": "array", "items": {"type": "integer"}},
        "values": {"type": "array", "items": {"$ref": "#/$defs/number"}}}}
    required = ["id", "case", "op", "quantity", "options", "framework", "framework_version", "dtype", "device",
                "outcome", "expected", "actual", "max_abs_err", "max_ulp_err", "tolerance", "reason"]
    record = {"type": "object", "required": required, "properties": {
        "id": {"type": "string", "description": "stable across runs: case::quantity::framework::dtype::device"},
        "quantity": {"enum": [*quantities.NAMES, None], "description": "null on a process record"},
        "dtype": {"enum": [*FLOAT_DTYPES, None], "description": "null on a process record"},
        "device": {"enum": ["cpu", "cuda"]},
        "kind": {"enum": ["reference", "pinned", "process"],
                 "description": "process: the checks of a pytest process of `run` that crashed, hung or exited "
                                "abnormally (reason process-died, process-hung, process-exited, ...)"},
        "exit_status": {"type": ["integer", "null"], "description": "a process record's exit status"},
        "results_written": {"type": ["integer", "null"], "description": "results the dead process wrote (kept)"},
        "rerun": {"type": "string", "description": "the command that reruns a process record's process"},
        "outcome": {"enum": list(OUTCOMES)},
        "reason": {"type": ["string", "null"],
                   "description": "not-installed, no-device, not-offered, manifest, inexact-golden, ..."},
        "expected": summary, "actual": summary,
        "max_abs_err": {"$ref": "#/$defs/number"}, "max_ulp_err": {"$ref": "#/$defs/number"},
        "tolerance": {"type": ["object", "null"]},
        "modes": {"type": "object", "description": "each mode's outcome and errors (jit, eager, compile, ...)",
                  "additionalProperties": {"type": "object", "required": ["passed", "max_ulp_err"], "properties": {
                      "outcome": {"enum": list(OUTCOMES), "description": "the mode judged on its own"},
                      "passed": {"type": "boolean", "description": "the mode conforms (a refusal of undefined "
                                                                   "input included)"},
                      "max_ulp_err": {"$ref": "#/$defs/number"},
                      "rms_err": {"$ref": "#/$defs/number", "description": "root-mean-square error"},
                      "raised": {"type": "string", "description": "what the mode raised, in a line"},
                      "refused": {"enum": ["raised", "nan"], "description": "how the mode refused undefined input"},
                      "same_as_eager": {"type": "boolean",
                                        "description": "torch._dynamo.utils.same's rule accepts it beside eager"}}}},
        "compiles": {"type": "object", "description": "compilations this check's call made, by mode",
                     "additionalProperties": {"type": "object", "properties": {
                         "count": {"type": "integer", "minimum": 1}, "seconds": {"type": "number", "minimum": 0}}}},
        "refused": {"enum": ["raised", "nan"], "description": "how the framework refused undefined input"},
        "undefined": {"type": "boolean", "description": "the case holds inputs outside the op's domain"},
        "layout": {"description": "how the inputs were split across ranks (null: not split); the id then ends "
                                  "in ::<axis><ranks>",
                   "anyOf": [{"type": "null"}, {"type": "object", "required": ["axis", "ranks"],
                                                "additionalProperties": False, "properties": {
                                                    "axis": {"enum": list(AXES)},
                                                    "ranks": {"type": "integer", "minimum": 1}}}]},
        "communication": {"type": "object", "description": "inputs split across ranks: the bytes the ranks' "
                                                           "collectives carried in one forward and backward",
                          "required": ["bytes", "max_bytes_per_rank", "floor_bytes"], "properties": {
                              "bytes": {"type": "object", "description": "rank 0's bytes sent, by collective",
                                        "additionalProperties": {"type": "integer", "minimum": 0}},
                              "max_bytes_per_rank": {"type": "integer", "minimum": 0},
                              "floor_bytes": {"type": "integer", "minimum": 0,
                                              "description": "one float32 per token a rank holds: the O(N) "
                                                             "floor the bytes are read against"}}},
        "failure": {"type": "array", "items": {"enum": list(KINDS)},
                    "description": "how a check that differs differs (what a manifest entry expects)"},
        "manifest": {"type": "string", "description": "the known-divergence entry that covers the check"},
        "golden": {"type": "object", "description": "a pinned check's number judged against the reference",
                   "properties": {"verdict": {"enum": list(VERDICTS)},
                                  "variant": {"type": "string"}, "precision": {"type": "string"},
                                  "printed": summary, "reference": summary}},
        "manifest_also": {"type": "array", "items": {"type": "string"},
                          "description": "further entries that cover the check, each for another cause"},
    }}
    return {"$schema": DRAFT, "title": "xent-conformance results", "type": "object",
            "required": ["schema", "environment", "results"],
            "properties": {"schema": {"const": SCHEMA}, "environment": {"type": "object"},
                           "results": {"type": "array", "items": record}},
            "$defs": {"number": number}}


SCHEMAS = {"cases": case_file_schema, "results": results_schema}


def render(kind: str) -> str:
    return json.dumps(SCHEMAS[kind](), indent=1, sort_keys=False) + "\n"
