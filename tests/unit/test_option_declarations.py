"""Options declared once, on the op: the loader's value checks, the case-file JSON Schema and
the manifest's conditions all follow from the declarations, for the suite's ops and for a new
op (tests/unit/focal_family.py) that nothing else in the suite names."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from conformance import schemas
from conformance.cases import CaseError, load_case_file
from conformance.cases.option_values import CHECKS
from conformance.cli import main
from conformance.core import conditions
from reference import registry
from reference.option_declaration import KINDS, Option
from reference.registry import OPS
from tests.unit import focal_family

ROOT = Path(__file__).resolve().parents[2]
FOCAL = """
schema: 1
cases:
  - name: focal-{name}
    op: sigmoid_focal_loss
    inputs: {{logits: [-1.0, 0.5, 3.0], labels: [0, 1, 1]}}
    options: {options}
"""


@pytest.fixture
def focal(monkeypatch):
    """The new family registered as reference/ops/__init__.py's FAMILIES would register it."""
    for name, op in registry._register([focal_family]).items():
        monkeypatch.setitem(OPS, name, op)
    return OPS["sigmoid_focal_loss"]


def write(tmp_path, options, name="bad"):
    path = tmp_path / "focal.yaml"
    path.write_text(textwrap.dedent(FOCAL.format(name=name, options=options)))
    return path


@pytest.mark.parametrize("options, key, message", [
    ('{gamma: "abc"}', "options.gamma", "gamma must be a non-negative number, got 'abc'"),
    ("{gamma: -1}", "options.gamma", "gamma must be a non-negative number, got -1"),
    ("{alpha: 1.5}", "options.alpha", "alpha must be a number in [0, 1], got 1.5"),
    ("{alpha: .nan}", "options.alpha", "alpha must be a number in [0, 1], got nan"),
    ("{beta: 1}", "options.beta", "unknown option for sigmoid_focal_loss (allowed: reduction, gamma, alpha, "
                                  "sample_weight)"),
])
def test_a_new_ops_bad_option_is_refused_at_load_naming_file_case_and_key(focal, tmp_path, options, key, message):
    path = write(tmp_path, options)
    with pytest.raises(CaseError) as info:
        load_case_file(path)
    assert str(info.value) == f"{path}:7: case 'focal-bad': key '{key}': {message}"


def test_a_new_ops_options_reach_its_functions(focal, tmp_path):
    (case,) = load_case_file(write(tmp_path, "{gamma: 1.5, alpha: 0.5, reduction: sum}", "good"))
    z, y = case.prediction, case.labels
    expected = focal_family.focal_loss(z, y, "float64", gamma=1.5, alpha=0.5).sum()
    assert registry.evaluate_loss(case.op, "exact", case.inputs, case.options, "float64") == pytest.approx(expected)
    defaults = registry.evaluate_loss(case.op, "exact", case.inputs, {}, "float64")
    np.testing.assert_allclose(defaults, focal_family.focal_loss(z, y, "float64", gamma=2.0, alpha=0.25))


def test_validate_exits_non_zero_naming_file_case_and_key(tmp_path):
    """`python -m conformance validate` with the family registered, in a process of its own."""
    path = write(tmp_path, '{gamma: "abc"}')
    script = ("import runpy, sys; from reference.registry import OPS, _register; from tests.unit import focal_family; "
              "OPS.update(_register([focal_family])); sys.argv = ['conformance', 'validate', sys.argv[1]]; "
              "runpy.run_module('conformance', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert f"{path}:7: case 'focal-bad': key 'options.gamma': gamma must be a non-negative number" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_schema_command_describes_a_new_ops_options(focal, tmp_path, capsys):
    assert main(["schema", "cases"]) == 0
    document = json.loads(capsys.readouterr().out)
    options = document["$defs"]["case"]["properties"]["options"]["properties"]
    assert options["gamma"] == {"type": "number", "minimum": 0.0, "default": 2.0, "description":
                                "the focusing exponent: (1 - p_t)^gamma weighs each example "
                                "(taken by: sigmoid_focal_loss)"}
    assert options["alpha"]["maximum"] == 1.0
    case = {"name": "focal", "op": "sigmoid_focal_loss", "inputs": {"logits": [0.5], "labels": [1]}}
    jsonschema.validate({"schema": 1, "cases": [{**case, "options": {"gamma": 0.5, "alpha": 1}}]}, document)
    for wrong in ({"gamma": "abc"}, {"alpha": 2}, {"axis": 0}):  # axis: an option of other ops
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"schema": 1, "cases": [{**case, "options": wrong}]}, document)


def test_conditions_read_a_new_ops_options(focal):
    assert conditions.parse_options({"gamma": "set", "alpha": [0.25, 0.5]}) == {"gamma": "set", "alpha": [0.25, 0.5]}
    with pytest.raises(conditions.ConditionError, match="'high' is not a value of it"):
        conditions.parse_options({"gamma": "high"})
    assert conditions.options_hold({"gamma": "unset"}, "sigmoid_focal_loss", {"gamma": 2.0})  # its default
    assert conditions.options_hold({"gamma": "set"}, "sigmoid_focal_loss", {"gamma": 3.0})


# Every option of the suite's ops, refused as the case loader has always refused it.
SOFTMAX = "softmax_cross_entropy"
REFUSALS = [
    (SOFTMAX, "{reduction: average}", "reduction",
     "reduction must be one of none, sum, mean, weighted_mean, got 'average'"),
    (SOFTMAX, "{reduction: weighted_mean}", "reduction", "weighted_mean divides by the sum of sample_weight, "
                                                         "which is missing"),
    (SOFTMAX, "{axis: 2}", "axis", "axis 2 is not an axis of the 2-d logits"),
    (SOFTMAX, "{axis: 0.5}", "axis", "axis 0.5 is not an axis of the 2-d logits"),
    (SOFTMAX, "{label_smoothing: 1.5}", "label_smoothing", "label_smoothing must be a number in [0, 1], got 1.5"),
    (SOFTMAX, "{weight: [1.0]}", "weight", "weight must be a list of 3 numbers, one per class"),
    (SOFTMAX, "{weight: null}", "weight", "weight must be a list of 3 numbers, one per class"),
    (SOFTMAX, "{z_loss: -0.1}", "z_loss", "z_loss must be a non-negative number, got -0.1"),
    (SOFTMAX, "{softcap: 0}", "softcap", "softcap must be a positive number, got 0"),
    (SOFTMAX, "{sample_weight: [1, 2, 3]}", "sample_weight",
     "sample_weight has shape (3,); one weight per loss is (2,)"),
    ("sparse_softmax_cross_entropy", "{ignore_index: 1.5}", "ignore_index", "ignore_index must be an integer, got 1.5"),
    ("sigmoid_cross_entropy", "{pos_weight: [1, 2]}", "pos_weight",
     "pos_weight must be a positive number or a list of 3 (one per class), got [1, 2]"),
    ("sigmoid_cross_entropy", "{pos_weight: 0}", "pos_weight",
     "pos_weight must be a positive number or a list of 3 (one per class), got 0"),
    ("mean_squared_error", "{half: 1}", "half", "half must be true or false"),
]
INPUTS = {SOFTMAX: "{logits: [[1, 2, 3], [0, 0, 0]], labels: [[0, 0, 1], [1, 0, 0]]}",
          "sparse_softmax_cross_entropy": "{logits: [[1, 2, 3], [0, 0, 0]], labels: [2, 0]}",
          "sigmoid_cross_entropy": "{logits: [[1, 2, 3]], labels: [[0, 1, 1]]}",
          "mean_squared_error": "{predictions: [1, 2], labels: [0, 1]}"}


def _load_one(folder, op, options):
    path = folder / "cases.yaml"
    path.write_text(f"schema: 1\ncases:\n  - name: one\n    op: {op}\n    inputs: {INPUTS[op]}\n"
                    f"    options: {options}\n")
    return path, load_case_file(path)


@pytest.mark.parametrize("op, options, key, message", REFUSALS)
def test_each_options_refusal(tmp_path, op, options, key, message):
    with pytest.raises(CaseError) as info:
        _load_one(tmp_path, op, options)
    assert str(info.value) == f"{tmp_path / 'cases.yaml'}:6: case 'one': key 'options.{key}': {message}"


def test_softcap_null_is_unset(tmp_path):
    _, (case,) = _load_one(tmp_path, SOFTMAX, "{softcap: null}")
    assert case.options == {"softcap": None}
    reference = registry.evaluate_loss(SOFTMAX, "exact", case.inputs, case.options, "float64")
    np.testing.assert_array_equal(reference, registry.evaluate_loss(SOFTMAX, "exact", case.inputs, {}, "float64"))


def test_every_kind_of_value_is_checked_and_has_a_schema():
    assert set(CHECKS) == set(KINDS) == set(schemas.VALUE_SCHEMAS)


def test_an_option_is_declared_once():
    declarations = {}
    for op in OPS.values():
        for name, option in op.options.items():
            assert declarations.setdefault(name, option) is option, f"{name} is declared twice"
    with pytest.raises(ValueError, match="kind must be one of"):
        Option(name="x", kind="float", default=0.0, description="")
    with pytest.raises(ValueError, match="lists its choices"):
        Option(name="x", kind="choice", default="a", description="")
