"""The manifest recognises a known behaviour in anyone's case: a case file written outside
cases/, run against the shipped manifest with stand-in adapters that behave as the frameworks
the entries describe. Where the behaviour occurs the check is a known divergence; where it does
not, the check is judged like any other, neither excused nor an unexpected pass."""
import dataclasses
import textwrap

import numpy as np
import pytest

from conformance import adapters
from conformance.adapters.api import Adapter, Capability, Result, elementwise_reduce
from conformance.cases.loader import load_case_file
from conformance.core import conditions, manifest
from conformance.core.checks import Check
from conformance.core.runner import Runner, conditions_inputs, cast_inputs
from reference.dtypes import numpy_dtype, round_to
from reference.numerics.sigmoid import log_sigmoid

# The reference's mean over no target is NaN by a 0/0 it means to take.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

CASES = """
schema: 1
cases:
  - name: my-confident-negatives
    op: sigmoid_cross_entropy
    inputs:
      logits: [-30.0, -25.0, 2.0]
      labels: [0.0, 0.0, 1.0]
  - name: my-moderate-logits
    op: sigmoid_cross_entropy
    inputs:
      logits: [-1.5, 0.5, 2.0]
      labels: [0.0, 1.0, 1.0]
  - name: my-padding-labels
    op: sparse_softmax_cross_entropy
    inputs:
      logits: [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]
      labels: [-1, -1]
    options: {ignore_index: -1, reduction: mean}
    grad: false
  - name: my-some-padding
    op: sparse_softmax_cross_entropy
    inputs:
      logits: [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]
      labels: [2, -1]
    options: {ignore_index: -1, reduction: mean}
    grad: false
  - name: my-labels-past-the-end
    op: sparse_softmax_cross_entropy
    inputs:
      logits: [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]
      labels: [0, 3]
    invalid_labels: true
    grad: false
"""


def _sparse(z, labels, options):
    ignore = options.get("ignore_index")
    kept = labels != ignore if ignore is not None else np.ones(labels.shape, bool)
    inside = np.where((labels >= 0) & (labels < z.shape[-1]), labels, 0)
    lse = np.log(np.sum(np.exp(z - z.max(-1, keepdims=True)), -1)) + z.max(-1)
    losses = np.where(kept, lse - np.take_along_axis(z, inside[:, None], -1)[:, 0], 0.0)
    return losses, kept


class StandIn(Adapter):
    """One framework's behaviour, in NumPy: what the shipped entry about it describes."""
    packages = ()

    def __init__(self, framework, versions):
        self.framework, self.versions = framework, versions
        self.capabilities = {op: Capability(None, reductions=("none", "sum", "mean"), differentiable=False,
                                            options={"ignore_index"})
                             for op in ("sigmoid_cross_entropy", "sparse_softmax_cross_entropy")}

    def version(self):
        return "stand-in"

    def package_versions(self):
        return dict(self.versions)

    def loss(self, op, prediction, labels, options, dtype, device):
        z = prediction.astype(np.float64)
        if op == "sigmoid_cross_entropy":  # PyTorch's (1 - y) z - log_sigmoid(z), rounded per operation
            r = lambda v: round_to(v, dtype)  # noqa: E731
            out = r(r(r(1 - labels) * z) - r(log_sigmoid(z)))
            return Result(elementwise_reduce(out, options.get("reduction", "none"), np.sum, np.mean), dtype, "cpu")
        losses, kept = _sparse(z, labels, options)
        reduction = options.get("reduction", "none")
        if reduction == "mean":  # Keras' divide_no_nan: a mean over no target is 0
            count = kept.sum()
            out = np.asarray(losses.sum() / count if count else 0.0)
        else:
            out = elementwise_reduce(losses, reduction, np.sum, np.mean)
        return Result(np.asarray(out, np.float64).astype(numpy_dtype(dtype)).astype(np.float64), dtype, "cpu")


STAND_INS = {"torch": {"torch": "2.9.0"}, "keras-tensorflow": {"keras": "3.15.0", "tensorflow": "2.20.0"},
             "keras-jax": {"keras": "3.15.0", "jax": "0.7.0"}}


@pytest.fixture
def outside_cases(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere" / "my_cases.yaml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(CASES))
    monkeypatch.setattr(adapters, "load", lambda name: StandIn(name, STAND_INS[name]))
    return {case.name: case for case in load_case_file(path)}


def run(case, framework, dtype="float32"):
    return Runner(manifest.load()).run(Check(case, framework, dtype, "cpu", "loss"))


@pytest.mark.parametrize("case, framework, entry", [
    ("my-confident-negatives", "torch", "torch-bce-with-logits-cancels-on-confident-negatives"),
    ("my-padding-labels", "keras-tensorflow", "keras-mean-over-nothing-is-zero"),
    ("my-labels-past-the-end", "keras-jax", "keras-jax-out-of-range-labels-cost-nothing"),
])
def test_a_known_behaviour_in_an_outside_case_is_recognised(outside_cases, case, framework, entry):
    record = run(outside_cases[case], framework)
    assert record["outcome"] == "xfailed", record["message"]
    assert entry in [record["manifest"], *record.get("manifest_also", [])]


@pytest.mark.parametrize("case, framework", [("my-moderate-logits", "torch"), ("my-some-padding", "keras-tensorflow")])
def test_where_the_behaviour_does_not_occur_nothing_is_excused(outside_cases, case, framework):
    record = run(outside_cases[case], framework)
    assert record["outcome"] == "passed", record["message"]
    assert "manifest" not in record


def test_a_behaviour_that_does_not_occur_does_not_excuse_a_different_failure(outside_cases, monkeypatch):
    """A wrong loss on moderate logits is a failure, not the known cancellation."""
    monkeypatch.setattr(StandIn, "loss", lambda self, *args: Result(np.array([1.0, 1.0, 1.0]), "float32", "cpu"))
    record = run(outside_cases["my-moderate-logits"], "torch")
    assert record["outcome"] == "failed" and "manifest" not in record


def test_a_version_outside_the_entry_s_range_is_not_recognised(outside_cases, monkeypatch):
    monkeypatch.setitem(STAND_INS, "torch", {"torch": "1.13.0"})
    assert run(outside_cases["my-confident-negatives"], "torch")["outcome"] == "failed"


@pytest.mark.parametrize("name, parameter, holds", [
    ("some_target_ignored", None, True), ("every_target_ignored", None, True), ("no_target_counts", None, True),
    ("labels_out_of_range", None, False), ("classes_at_least", 3, True), ("classes_at_least", 4, False),
    ("prediction_dims_at_least", 2, True), ("prediction_dims_at_least", 3, False),
])
def test_input_predicates_read_the_case_as_the_dtype_holds_it(outside_cases, name, parameter, holds):
    case = outside_cases["my-padding-labels"]
    inputs = conditions_inputs(case, cast_inputs(case, "float32"))
    assert conditions.inputs_hold(((name, parameter),), inputs) == holds


@pytest.mark.parametrize("when, message", [
    ("{inputs: [labels_not_normalized]}", "key 'when.inputs': 'labels_not_normalized' is not a known predicate"),
    ("{inputs: [{classes_at_least: many}]}", "classes_at_least takes a number"),
    ("{options: {reduce: mean}}", "key 'when.options': unknown option reduce"),
    ("{model: float16}", "key 'when.model': 'float16'"),
    ("{model: float32}", "a skip is decided before anything runs"),
    ("{inptus: [empty_batch]}", "key 'when.inptus': unknown"),
    ("{model: null}", "key 'when.model': None"),
    ("{options: {label_smoothing: sett}}", "label_smoothing: 'sett' is not a value of it"),
])
def test_a_malformed_condition_is_refused_naming_the_key(tmp_path, when, message):
    path = tmp_path / "divergences.yaml"
    action = "skip" if "skip" in message else "xfail"
    path.write_text(f"schema: 1\nentries:\n  - {{id: a, match: {{framework: jax}}, when: {when}, "
                    f"action: {action}, expect: nan, reason: r}}\n")
    with pytest.raises(manifest.ManifestError, match=message.replace("(", r"\(")):
        manifest.load(path)


MASKED = """
schema: 1
cases:
  - name: my-masked-vocabulary
    op: sparse_softmax_cross_entropy
    inputs:
      logits: [[1.0, 2.0, -.inf], [0.5, -.inf, 0.0]]
      labels: [1, 0]
    grad: false
"""


class TwoModes(StandIn):
    """keras-jax's sparse loss: jit right; eager as the entry about eager says (or not)."""
    eager_answer = "nan"

    def __init__(self, framework, versions):
        super().__init__(framework, versions)
        self.capabilities = {op: dataclasses.replace(c, modes=("jit", "eager")) for op, c in self.capabilities.items()}

    def loss(self, op, prediction, labels, options, dtype, device):
        losses, _ = _sparse(prediction.astype(np.float64), labels, options)
        right = np.asarray(losses).astype(np.float32).astype(np.float64)
        eager = {"nan": np.full_like(right, np.nan), "right": right, "wrong": right + 1.0}[self.eager_answer]
        return Result(right, dtype, "cpu", "jit", [Result(eager, dtype, "cpu", "eager")])


@pytest.mark.parametrize("jit_wrong, eager_answer, outcome", [
    (False, "nan", "xfailed"),   # the eager NaN the entry describes, jit right
    (False, "right", "xpassed"),  # the eager NaN is gone: a fix is noticed
    (True, "nan", "failed"),      # the entry says nothing of jit: its error is a failure
])
def test_an_entry_about_one_mode_excuses_that_mode_only(tmp_path, monkeypatch, jit_wrong, eager_answer, outcome):
    path = tmp_path / "masked.yaml"
    path.write_text(textwrap.dedent(MASKED))
    case = load_case_file(path)[0]
    monkeypatch.setattr(TwoModes, "eager_answer", eager_answer)
    if jit_wrong:
        original = TwoModes.loss

        def jit_off_by_one(self, *args):
            result = original(self, *args)
            result.values = result.values + 1.0
            return result
        monkeypatch.setattr(TwoModes, "loss", jit_off_by_one)
    monkeypatch.setattr(adapters, "load", lambda name: TwoModes(name, STAND_INS[name]))
    record = Runner(manifest.load()).run(Check(case, "keras-jax", "float32", "cpu", "loss"))
    assert record["outcome"] == outcome, record["message"]
    if outcome != "failed":
        assert "one-hot-sparse-masked-logits-give-nan" in [record["manifest"], *record.get("manifest_also", [])]


def test_an_entry_about_a_mode_does_not_excuse_a_framework_that_runs_one_other_way(tmp_path, monkeypatch):
    path = tmp_path / "divergences.yaml"
    path.write_text("schema: 1\nentries:\n  - {id: jit-only, match: {framework: torch, mode: jit}, "
                    "action: xfail, expect: inaccurate, reason: r}\n")
    monkeypatch.setattr(StandIn, "loss", lambda self, *args: Result(np.array([1.0, 1.0, 1.0]), "float32", "cpu"))
    monkeypatch.setattr(adapters, "load", lambda name: StandIn(name, STAND_INS[name]))
    case = load_case_file_from(tmp_path, CASES, "my-moderate-logits")
    record = Runner(manifest.load(path)).run(Check(case, "torch", "float32", "cpu", "loss"))
    assert record["outcome"] == "failed", record["message"]


def load_case_file_from(tmp_path, text, name):
    path = tmp_path / "cases.yaml"
    path.write_text(textwrap.dedent(text))
    return {case.name: case for case in load_case_file(path)}[name]


def test_a_skip_cannot_be_about_one_mode(tmp_path):
    path = tmp_path / "divergences.yaml"
    path.write_text("schema: 1\nentries:\n  - {id: a, match: {framework: jax, mode: jit}, action: skip, reason: r}\n")
    with pytest.raises(manifest.ManifestError, match="key 'match.mode'"):
        manifest.load(path)


def test_a_label_logit_far_below_its_row_counts_only_for_a_target_that_counts():
    z = np.array([[-100.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    ignored = conditions.Inputs("sparse_softmax_cross_entropy", {"ignore_index": -1}, z, np.array([-1, 0]))
    counted = conditions.Inputs("sparse_softmax_cross_entropy", {"ignore_index": -1}, z, np.array([0, 0]))
    assert not conditions.inputs_hold((("label_logit_below_row_max_by", 64.0),), ignored)
    assert conditions.inputs_hold((("label_logit_below_row_max_by", 64.0),), counted)


@pytest.mark.parametrize("options, wanted, holds", [
    ({"label_smoothing": None}, {"label_smoothing": 0.0}, True),  # written as null: the default
    ({"label_smoothing": None}, {"label_smoothing": "unset"}, True),
    ({"label_smoothing": 0.1}, {"label_smoothing": "set"}, True),
    ({"reduction": "mean"}, {"reduction": ["mean", "sum"]}, True),
    ({}, {"ignore_index": "set"}, False),
])
def test_option_conditions(options, wanted, holds):
    assert conditions.options_hold(wanted, "sparse_softmax_cross_entropy", options) == holds


@pytest.mark.parametrize("options, labels, inexact", [
    ({"reduction": "mean"}, [0, 1, 2, 1], False),  # 1/4
    ({"reduction": "mean"}, [0, 1, 2], True),  # 1/3
    ({"reduction": "mean", "weight": [1.0, 2.0, 4.0]}, [0, 1, 2, 1], True),  # w / 9
    ({"reduction": "mean", "ignore_index": -1}, [0, -1, 2, 1], True),  # 1/3 of the targets that count
    ({"reduction": "sum"}, [0, 1, 2], False),
])
def test_reduction_factors_follow_the_references_denominator(options, labels, inexact):
    z = np.zeros((len(labels), 3))
    x = conditions.Inputs("sparse_softmax_cross_entropy", options, z, np.array(labels))
    assert conditions.inputs_hold((("reduction_factor_inexact_in_float32", None),), x) == inexact


@pytest.mark.parametrize("raising_mode, outcome", [("compile", "xfailed"), ("eager", "error")])
def test_a_raise_in_one_mode_is_judged_by_the_entries_about_that_mode(tmp_path, monkeypatch, raising_mode, outcome):
    """torch.compile raising where eager computes is that mode's known divergence; the same
    raise from eager, which the entry does not name, is an error."""
    path = tmp_path / "divergences.yaml"
    path.write_text("schema: 1\nentries:\n  - {id: compile-raises, match: {framework: torch, mode: compile}, "
                    "action: xfail, expect: raises, reason: r}\n")

    class CompileAndEager(StandIn):
        def __init__(self, framework, versions):
            super().__init__(framework, versions)
            self.capabilities = {op: dataclasses.replace(c, modes=("eager", "compile"))
                                 for op, c in self.capabilities.items()}

        def loss(self, *args):
            error = RuntimeError("cannot trace")
            raise adapters.RaisedInMode("compile", error) if raising_mode == "compile" else error
    monkeypatch.setattr(adapters, "load", lambda name: CompileAndEager(name, STAND_INS[name]))
    case = load_case_file_from(tmp_path, CASES, "my-moderate-logits")
    record = Runner(manifest.load(path)).run(Check(case, "torch", "float32", "cpu", "loss"))
    assert record["outcome"] == outcome, record["message"]
    assert record["failure"] == ["raises"]
    if outcome == "error":
        assert record["message"] == "torch raised RuntimeError: cannot trace"
    else:
        assert record["manifest"] == "compile-raises"


def test_the_classes_off_the_second_axis_are_where_pytorch_permutes():
    def holds(shape, axis):
        z = np.zeros(shape)
        inputs = conditions.Inputs("softmax_cross_entropy", {"axis": axis}, z, z)
        return conditions.inputs_hold((("class_axis_not_second", None),), inputs)
    assert not holds((4, 3), -1) and not holds((2, 3, 4), 1)
    assert holds((4, 3), 0) and holds((2, 3, 4), -1) and not holds((3,), -1)


def test_the_rounded_labels_model_reads_a_large_class_as_the_dtype_holds_it():
    """labels_rounded_to_dtype: in bfloat16 class 128256 is 128000, so the gradient's -1 moves
    there; in float32 every such label is exact and the model is the reference."""
    from conformance.core import behaviour_models
    from reference import registry

    model = behaviour_models.formula("sparse_softmax_cross_entropy", "labels_rounded_to_dtype")
    z, labels = np.zeros((1, 128257)), np.array([128256])
    inputs = {"logits": z, "labels": labels}
    grad, _ = registry.evaluate_grad("sparse_softmax_cross_entropy", model, inputs, {}, "bfloat16")
    assert grad[0, 128000] < -0.99 and grad[0, 128256] > 0
    exact, _ = registry.evaluate_grad("sparse_softmax_cross_entropy", "exact", inputs, {}, "float32")
    same, _ = registry.evaluate_grad("sparse_softmax_cross_entropy", model, inputs, {}, "float32")
    np.testing.assert_array_equal(same, exact)
