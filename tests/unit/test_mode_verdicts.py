"""Every mode of a framework runs and is judged on its own: a refusal in one mode never excuses
a finite answer in another, a raise in the first mode does not stop the others, and `--modes`
leaves modes out of the run as counted skips."""
import numpy as np
import pytest

from conformance import adapters
from conformance.adapters.api import Capability, Result, results_in_modes
from conformance.adapters.numpy_adapter import NumpyAdapter
from conformance.cases import Case
from conformance.core.checks import Check
from conformance.core.runner import Runner

pytest_plugins = ["pytester"]
LOGITS = np.array([[1.0, 2.0, 3.0, 4.0]] * 3)
MODES = ("eager", "compile")


class TwoModes(NumpyAdapter):
    """NumPy's sparse cross-entropy in two modes, each answering a label outside the classes its
    own way: raise (on any input), nan, clamp (a finite, wrong loss) or right (as given)."""

    capabilities = {"sparse_softmax_cross_entropy": Capability(
        NumpyAdapter.capabilities["sparse_softmax_cross_entropy"].implementation, modes=MODES)}

    def __init__(self, answers):
        self.answers = answers

    def loss(self, op, prediction, labels, options, dtype, device):
        def compute(mode):
            bad = (labels < 0) | (labels >= prediction.shape[-1])
            answer = self.answers[mode]
            if answer == "raise":  # on any input: a mode that raises on valid input is an error
                raise IndexError(f"Target out of bounds in {mode}")
            result = NumpyAdapter.loss(self, op, prediction, np.clip(labels, 0, prediction.shape[-1] - 1),
                                       options, dtype, device)
            if answer == "nan":
                result.values = np.where(bad, np.nan, result.values)
            return result
        return results_in_modes(MODES, compute)


@pytest.fixture
def answers(monkeypatch):
    chosen = {}
    monkeypatch.setattr(adapters, "load", lambda name: TwoModes(chosen))
    return chosen


def run(labels, undefined=True, manifest=()):
    case = Case(name="labels", op="sparse_softmax_cross_entropy", path="<test>", undefined=undefined,
                inputs={"logits": LOGITS, "labels": np.array(labels)})
    return Runner(manifest=list(manifest)).run(Check(case, "numpy", "float64", "cpu", "loss"))


@pytest.mark.parametrize("eager, compiled, outcome", [
    ("raise", "raise", "passed"), ("nan", "raise", "passed"), ("raise", "nan", "passed"),
    ("raise", "clamp", "failed"),  # pytorch #193757's class: the compiled mode accepts what eager refuses
    ("clamp", "raise", "failed"),  # its mirror: an eager kernel without a bounds check
    ("clamp", "nan", "failed"),
])
def test_each_mode_answers_undefined_input_for_itself(answers, eager, compiled, outcome):
    answers.update(eager=eager, compile=compiled)
    record = run([1, 4, -1])
    assert record["outcome"] == outcome, record["message"]
    modes = record["modes"]
    assert set(modes) == set(MODES)
    for mode, answer in (("eager", eager), ("compile", compiled)):
        assert modes[mode]["outcome"] == ("failed" if answer == "clamp" else "passed")
        assert modes[mode].get("refused") == {"raise": "raised", "nan": "nan", "clamp": None}[answer]
    if outcome == "failed":
        wrong = "eager" if eager == "clamp" else "compile"
        assert record["message"].startswith(f"numpy ({wrong})")
        assert record["failure"] == ["finite"]
    else:
        assert record["refused"] == ("raised" if "raise" in (eager, compiled) else "nan")


def test_a_raise_in_the_first_mode_does_not_stop_the_others(answers):
    answers.update(eager="raise", compile="right")
    record = run([1, 2, 3], undefined=False)
    assert record["outcome"] == "error" and record["reason"] == "raised"
    assert record["modes"]["compile"]["outcome"] == "passed"  # it ran, and its values were judged
    assert record["modes"]["eager"]["raised"].startswith("IndexError")
    assert record["max_ulp_err"] is not None


def test_a_raise_in_a_later_mode_keeps_the_earlier_results(answers):
    answers.update(eager="right", compile="raise")
    record = run([1, 2, 3], undefined=False)
    assert record["outcome"] == "error" and record["modes"]["eager"]["outcome"] == "passed"
    assert record["message"].startswith("numpy (compile) raised IndexError")


def test_an_entry_about_one_mode_excuses_only_that_mode(tmp_path, answers):
    from conformance.core import manifest

    path = tmp_path / "m.yaml"
    path.write_text("schema: 1\nentries:\n  - {id: compiled-accepts, match: {framework: numpy, mode: compile}, "
                    "action: xfail, expect: finite, reason: the compiled kernel has no bounds check}\n")
    entries = manifest.load(path)
    answers.update(eager="raise", compile="clamp")
    assert run([1, 4, -1], manifest=entries)["outcome"] == "xfailed"
    answers.update(eager="clamp", compile="clamp")
    record = run([1, 4, -1], manifest=entries)
    assert record["outcome"] == "failed" and record["message"].startswith("numpy (eager)")
    answers.update(eager="raise", compile="raise")  # a refusal is right: never a fixed divergence
    assert run([1, 4, -1], manifest=entries)["outcome"] == "passed"


def test_modes_left_out_of_the_run_are_not_asked_for(answers):
    answers.update(eager="clamp", compile="raise")
    adapters.select_modes(["eager"])
    try:
        record = run([1, 4, -1])
    finally:
        adapters.select_modes(None)
    assert record["outcome"] == "failed" and "modes" not in record


def test_a_check_whose_every_mode_is_left_out_is_skipped_and_counted(answers):
    adapters.select_modes(["jit"])
    try:
        record = run([1, 2, 3], undefined=False)
    finally:
        adapters.select_modes(None)
    assert record["outcome"] == "skipped" and record["reason"] == "mode-not-selected"


def test_results_in_modes_runs_every_mode_and_keeps_each_raise():
    def compute(mode):
        if mode == "a":
            raise ValueError("a fails")
        return Result(np.zeros(1), "float32", "cpu")
    first = results_in_modes(("a", "b", "c"), compute)
    assert [r.mode for r in first.all_modes()] == ["a", "b", "c"]
    assert isinstance(first.raised, ValueError) and first.values is None
    assert all(r.raised is None for r in first.others)


def test_a_rank_that_died_in_any_mode_ends_the_call_as_no_raise_of_the_framework_does():
    from conformance.adapters.api import RankFailed

    def compute(mode):
        if mode == "b":
            raise RankFailed("rank 1 did not answer within 60 s")
        return Result(np.zeros(1), "float32", "cpu")
    with pytest.raises(RankFailed, match="rank 1"):
        results_in_modes(("a", "b"), compute)


def test_pytest_refuses_a_mode_no_framework_checked_here_runs(pytester):
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--framework", "numpy", "--modes", "eagre",
                                           "--co", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modes eagre: no framework checked here runs that mode (theirs: eager)*"])


def test_run_refuses_a_mode_no_framework_of_the_run_has(tmp_path, capsys):
    from conformance import cli
    from conformance.results import records

    records.write(tmp_path / "conformance.json", {"frameworks": {"torch": {"modes": ["compile", "eager"]},
                                                                  "jax": {"modes": ["eager", "jit"]}}}, [])
    assert cli._modes_no_framework_runs(["eager,jit"], tmp_path) == 0
    assert cli._modes_no_framework_runs(["eager,xla"], tmp_path) == 2
    refusal = "--modes xla: no framework of this run runs that mode (theirs: compile, eager, jit)"
    assert refusal in capsys.readouterr().err
