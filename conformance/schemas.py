"""JSON Schemas generated from the suite's own schema data: one for case files (editors pick
it up through a `# yaml-language-server: $schema=...` line) and one for results files.

`validate` stays the authority on case files (it also checks shapes, label ranges and the
options each op takes); the schema gives an editor completion and the same key checks.

    xent-conformance schema cases [-o FILE]      xent-conformance schema results [-o FILE]
"""
from __future__ import annotations

import json

from conformance.cases import schema
from conformance.core import checks
from conformance.core.failure_kinds import KINDS
from conformance.core.goldens import VERDICTS
from conformance.results.records import OUTCOMES, SCHEMA
from reference.dtypes import FLOAT_DTYPES
from reference.registry import OPS, REDUCTIONS, SHARED_OPTIONS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "number": "number", "list": "array",
              "mapping": "object", "number_or_list": ["number", "array"]}
OPTION_SCHEMAS = {  # the value each option takes; which op takes which is in OPS
    "reduction": {"enum": list(REDUCTIONS)},
    "axis": {"type": "integer"},
    "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1},
    "weight": {"type": "array", "items": {"type": "number"}, "description": "one weight per class"},
    "sample_weight": {"$ref": "#/$defs/array", "description": "one weight per unreduced loss"},
    "pos_weight": {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                             {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1}],
                   "description": "a number, or one per class (the last axis)"},
    "ignore_index": {"type": "integer"},
    "half": {"type": "boolean"},
    "z_loss": {"type": "number", "minimum": 0},
    "softcap": {"type": "number", "exclusiveMinimum": 0, "description": "logits become c tanh(z / c); -inf stays a mask"},
}


def _object(keys: dict, overrides: dict | None = None) -> dict:
    """An object schema from a (type, required, description) table."""
    properties = {}
    for name, (kind, _, description) in keys.items():
        properties[name] = {"type": JSON_TYPES[kind], "description": description}
    properties.update(overrides or {})
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [name for name, (_, required, _) in keys.items() if required]}


def case_file_schema() -> dict:
    options = sorted({name for op in OPS.values() for name in op.options} | set(SHARED_OPTIONS))
    missing = [name for name in options if name not in OPTION_SCHEMAS]
    if missing:
        raise ValueError(f"no JSON Schema for the option(s) {', '.join(missing)}: add them to OPTION_SCHEMAS")
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
                    "properties": {name: OPTION_SCHEMAS[name] for name in options}},
        "dtypes": {"type": "array", "items": {"enum": list(FLOAT_DTYPES)}, "minItems": 1, "uniqueItems": True},
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
        "quantity": {"enum": [*checks.QUANTITIES, None], "description": "null on a process record"},
        "dtype": {"enum": [*FLOAT_DTYPES, None], "description": "null on a process record"},
        "device": {"enum": ["cpu", "cuda"]},
        "kind": {"enum": ["reference", "pinned", "process"],
                 "description": "process: the checks of a pytest process of `run` that crashed, hung or exited "
                                "abnormally (reason process-died, process-hung, process-exited, ...)"},
        "exit_status": {"type": ["integer", "null"], "description": "a process record's exit status"},
        "results_written": {"type": ["integer", "null"], "description": "results the dead process wrote (kept)"},
        "rerun": {"type": "string", "description": "the command that reruns a process record's process"},
        "outcome": {"enum": list(OUTCOMES)},
        "reason": {"type": ["string", "null"], "description": "not-installed, no-device, not-offered, manifest, inexact-golden, ..."},
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
