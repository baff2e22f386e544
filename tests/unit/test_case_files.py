"""Case loading: YAML numbers, duplicate keys, and refusals that name file, case and key."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conformance.cases import yamlio
from conformance.cases import CaseError, load_case_file, load_cases

GOOD = """
schema: 1
cases:
  - name: tiny-sigmoid
    op: sigmoid_cross_entropy
    inputs: {logits: [1e-7, -inf, 2.5], labels: [1, 0, 0.5]}
"""


def write(tmp_path, text, name="cases.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_reads_exponents_infinities_and_nan_as_numbers():
    data = yamlio.load("a: [1e-7, inf, -inf, .inf, nan, 3, 2.5E+3]")
    assert data["a"][:4] == [1e-7, np.inf, -np.inf, np.inf]
    assert np.isnan(data["a"][4]) and data["a"][5] == 3 and data["a"][6] == 2500.0


def test_yaml_refuses_duplicate_keys_with_their_lines():
    with pytest.raises(yamlio.YamlError, match="duplicate key 'op'") as info:
        yamlio.load("name: x\nop: a\nop: b\n")
    assert info.value.line == 3


def test_a_valid_file_loads_with_float64_inputs(tmp_path):
    (case,) = load_case_file(write(tmp_path, GOOD))
    assert case.prediction.dtype == np.float64 and case.prediction[0] == 1e-7
    assert case.dtypes == ("float32", "float64")


def test_generated_inputs_are_reproducible(tmp_path):
    text = """
    schema: 1
    cases:
      - name: generated
        op: sparse_softmax_cross_entropy
        inputs:
          logits: {generate: normal, shape: [4, 5], seed: 3, std: 2.0, offset: 100.0}
          labels: {generate: integers, shape: [4], seed: 4, high: 5}
    """
    first = load_case_file(write(tmp_path, text))[0]
    second = load_case_file(write(tmp_path, text))[0]
    assert np.array_equal(first.prediction, second.prediction)
    assert first.labels.dtype == np.int64 and first.prediction.mean() > 90


GENERATED = """
schema: 1
cases:
  - name: generated
    op: sigmoid_cross_entropy
    inputs:
      logits: {}
      labels: [1.0, 0.0]
"""

BAD_CASES = {
    "bad yaml": ("schema: 1\ncases: [\n", None, None),
    "unknown op": (GOOD.replace("sigmoid_cross_entropy", "sigmoid_xent"), "tiny-sigmoid", "op"),
    "missing key": (GOOD.replace("    op: sigmoid_cross_entropy\n", ""), "tiny-sigmoid", "op"),
    "wrong type": (GOOD.replace("name: tiny-sigmoid", "name: tiny-sigmoid\n    dtypes: float32"), "tiny-sigmoid",
                   "dtypes"),
    "ragged array": (GOOD.replace("[1e-7, -inf, 2.5]", "[[1, 2], [3]]"), "tiny-sigmoid", "inputs.logits"),
    "shape mismatch": (GOOD.replace("[1, 0, 0.5]", "[1, 0]"), "tiny-sigmoid", "inputs.labels"),
    "framework in name": (GOOD.replace("tiny-sigmoid", "torch-sigmoid"), "torch-sigmoid", "name"),
    "unknown option": (GOOD.replace("inputs:", "options: {reduce: sum}\n    inputs:"), "tiny-sigmoid",
                       "options.reduce"),
    "duplicate key": (GOOD.replace("op: sigmoid", "op: x\n    op: sigmoid"), None, None),
    "pinned without source": (GOOD + "    pinned: [{value: 1.0, dtype: float32, variant: exact}]\n", "tiny-sigmoid",
                              "pinned[0].source"),
    "negative seed": (GENERATED.format("{generate: normal, shape: [2], seed: -1}"), "generated", "inputs.logits.seed"),
    "negative std": (GENERATED.format("{generate: normal, shape: [2], seed: 1, std: -2.0}"), "generated",
                     "inputs.logits.std"),
    "low not below high": (GENERATED.format("{generate: uniform, shape: [2], seed: 1, low: 2.0, high: 1.0}"),
                           "generated", "inputs.logits.high"),
    "integer bounds equal": (GENERATED.format("{generate: integers, shape: [2], seed: 1, low: 3, high: 3}"),
                             "generated", "inputs.logits.high"),
    "infinite offset": (GENERATED.format("{generate: normal, shape: [2], seed: 1, offset: inf}"), "generated",
                        "inputs.logits.offset"),
    "axis of a normal draw": (GENERATED.format("{generate: normal, shape: [2], seed: 1, axis: 0}"), "generated",
                              "inputs.logits.axis"),
    "sexagesimal number": (GOOD.replace("[1e-7, -inf, 2.5]", "[1:30, -inf, 2.5]"), "tiny-sigmoid", "inputs.logits"),
    "hexadecimal number": (GOOD.replace("[1e-7, -inf, 2.5]", "[0x10, -inf, 2.5]"), "tiny-sigmoid", "inputs.logits"),
    "yes for a boolean": (GOOD.replace("name: tiny-sigmoid", "name: tiny-sigmoid\n    grad: yes"), "tiny-sigmoid",
                          "grad"),
    "date for a number": (GOOD.replace("[1, 0, 0.5]", "[1, 0, 2024-01-01]"), "tiny-sigmoid", "inputs.labels"),
    "duplicate dtype": (GOOD.replace("name: tiny-sigmoid", "name: tiny-sigmoid\n    dtypes: [float32, float32]"),
                        "tiny-sigmoid", "dtypes[1]"),
    "empty dtypes": (GOOD.replace("name: tiny-sigmoid", "name: tiny-sigmoid\n    dtypes: []"), "tiny-sigmoid",
                     "dtypes"),
}


@pytest.mark.parametrize("problem", sorted(BAD_CASES))
def test_bad_files_are_refused_naming_file_case_and_key(tmp_path, problem):
    text, case, key = BAD_CASES[problem]
    path = write(tmp_path, text)
    with pytest.raises(CaseError) as info:
        load_case_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    if case:
        assert f"case {case!r}" in message
    if key:
        assert f"key {key!r}" in message
    if problem != "bad yaml":
        assert f"{path}:" in message and message.split(":")[1].isdigit(), "the line of the problem is named"


def test_the_line_named_is_the_line_of_the_key(tmp_path):
    path = write(tmp_path, GENERATED.format("{generate: normal, shape: [2], seed: -1}"))
    with pytest.raises(CaseError, match=f"^{path}:7: case 'generated': key 'inputs.logits.seed'"):
        load_case_file(path)


def test_duplicate_case_names_across_files_are_refused(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(CaseError, match="also used in"):
        load_cases([tmp_path])


def validate(*paths):
    return subprocess.run([sys.executable, "-m", "conformance", "validate", *map(str, paths)],
                          capture_output=True, text=True)


def test_validate_accepts_the_shipped_cases():
    done = validate("cases")
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


@pytest.mark.parametrize("problem", ["bad yaml", "unknown op", "ragged array", "missing key"])
def test_validate_exits_2_with_one_line_and_no_traceback(tmp_path, problem):
    path = write(tmp_path, BAD_CASES[problem][0])
    done = validate(path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert str(path) in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_validate_exits_2_on_a_missing_path(tmp_path):
    done = validate(tmp_path / "nope.yaml")
    assert done.returncode == 2 and "Traceback" not in done.stderr


SPARSE = """
schema: 1
cases:
  - name: sparse-labels
    op: sparse_softmax_cross_entropy
    inputs: {logits: [[1.0, 2.0], [3.0, 4.0]], labels: [1, 2]}
"""


def test_out_of_range_labels_are_refused_unless_asked_for(tmp_path):
    with pytest.raises(CaseError, match="label out of range"):
        load_case_file(write(tmp_path, SPARSE))
    (case,) = load_case_file(write(tmp_path, SPARSE.replace("    inputs:", "    invalid_labels: true\n    inputs:")))
    from reference import registry

    loss = registry.evaluate_loss(case.op, "exact", case.inputs, case.options, "float64")
    assert np.isfinite(loss[0]) and np.isnan(loss[1])


@pytest.mark.parametrize("option,message", [
    ("{label_smoothing: 1.5}", "label_smoothing"),
    ("{weight: [1.0]}", "weight must be a list of 2"),
    ("{ignore_index: 0.5}", "ignore_index"),
    ("{reduction: average}", "reduction must be one of"),
    ("{axis: 3}", "axis 3"),
])
def test_bad_option_values_name_the_option(tmp_path, option, message):
    text = SPARSE.replace("labels: [1, 2]", "labels: [1, 0]")
    text = text.replace("    inputs:", f"    options: {option}\n    inputs:")
    with pytest.raises(CaseError, match=message) as info:
        load_case_file(write(tmp_path, text))
    assert "key 'options." in str(info.value)


def test_sample_weights_have_one_weight_per_loss(tmp_path):
    text = SPARSE.replace("labels: [1, 2]", "labels: [1, 0]").replace(
        "    inputs:", "    options: {sample_weight: [1.0, 2.0, 3.0], reduction: weighted_mean}\n    inputs:")
    with pytest.raises(CaseError, match=r"one weight per loss is \(2,\)"):
        load_case_file(write(tmp_path, text))
    (case,) = load_case_file(write(tmp_path, text.replace("[1.0, 2.0, 3.0]", "[1.0, 3.0]")))
    from reference import registry

    each = registry.evaluate_loss(case.op, "exact", case.inputs, {}, "float64")
    mean = registry.evaluate_loss(case.op, "exact", case.inputs, case.options, "float64")
    assert mean == pytest.approx((each[0] + 3 * each[1]) / 4)


LINEAR = """
schema: 1
cases:
  - name: head
    op: linear_cross_entropy
    inputs:
      hidden: [[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]]
      linear_weight: [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]
      labels: [2, 0, 1]
"""


@pytest.mark.parametrize("change, key, message", [
    (("linear_weight: [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]", "linear_weight: [[0.1], [0.3], [0.5]]"),
     "inputs.linear_weight", r"\[classes, 2\]"),
    (("      labels:", "      linear_bias: [1.0, 2.0]\n      labels:"), "inputs.linear_bias", r"shape \(3,\)"),
    (("labels: [2, 0, 1]", "labels: [3, 0, 1]"), "inputs.labels", r"out of range \[0, 3\)"),
    (("labels: [2, 0, 1]", "labels: [2, 0]"), "inputs.labels", "does not match"),
    (("      linear_weight: [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]\n", ""), "inputs.linear_weight", "missing input"),
    (("      labels:", "      logits: [1.0]\n      labels:"), "inputs.logits", "expected hidden, linear_weight"),
    (("    inputs:", "    options: {weight: [1.0, 2.0]}\n    inputs:"), "options.weight", "list of 3"),
    (("    inputs:", "    options: {axis: 0}\n    inputs:"), "options.axis", "unknown option"),
])
def test_linear_cases_are_checked_against_the_logits_their_inputs_make(tmp_path, change, key, message):
    with pytest.raises(CaseError, match=message) as info:
        load_case_file(write(tmp_path, LINEAR.replace(*change)))
    assert f"key '{key}'" in str(info.value)


def test_a_linear_case_loads_and_checks_every_gradient(tmp_path):
    from conformance.core import checks

    with_bias = LINEAR.replace("      labels:", "      linear_bias: [0, 1, 2]\n      labels:")
    (case,) = load_case_file(write(tmp_path, with_bias))
    assert case.prediction.shape == (3, 2) and case.inputs["linear_bias"].dtype == np.float64
    quantities = {c.quantity for c in checks.generate([case], ["numpy"], ["cpu"]) if c.dtype == "float32"}
    assert quantities == {"loss", "loss_dtype", "grad_logits", "grad_linear_weight", "grad_linear_bias", "vjp_logits",
                          "vjp_linear_weight", "vjp_linear_bias", "inputs_intact", "second_backward"}
