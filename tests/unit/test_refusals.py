"""Undefined input (integer labels outside the classes) has its own verdict: raising or NaN
conforms and says which; a finite number fails; raising on valid input is still an error."""
import numpy as np
import pytest

from conformance import adapters
from conformance.adapters.numpy_adapter import NumpyAdapter
from conformance.cases import Case
from conformance.core.checks import Check
from conformance.core.runner import Runner
from conformance.results import summary

LOGITS = np.array([[1.0, 2.0, 3.0, 4.0]] * 3)


class Behaving(NumpyAdapter):
    """NumPy's sparse cross-entropy, with a chosen answer to a label outside the classes."""

    def __init__(self, answer):
        self.answer = answer

    def loss(self, op, prediction, labels, options, dtype, device):
        bad = (labels < 0) | (labels >= prediction.shape[-1])
        if bad.any() and self.answer == "raise":
            raise IndexError("Target 4 is out of bounds")
        if bad.any() and self.answer == "clamp":
            labels = np.clip(labels, 0, prediction.shape[-1] - 1)  # a finite, wrong loss
        result = super().loss(op, prediction, np.where(bad, 0, labels), options, dtype, device)
        if bad.any() and self.answer == "nan":
            result.values = np.where(bad, np.nan, result.values)
        return result


def run(answer, labels, undefined=True):
    case = Case(name="labels", op="sparse_softmax_cross_entropy", path="<test>", undefined=undefined,
                inputs={"logits": LOGITS, "labels": np.array(labels)})
    return Runner(manifest=[]).run(Check(case, "numpy", "float64", "cpu", "loss"))


@pytest.fixture(autouse=True)
def behaving(monkeypatch):
    chosen = {}
    monkeypatch.setattr(adapters, "load", lambda name: Behaving(chosen["answer"]))
    return chosen


@pytest.mark.parametrize("answer, outcome, refused", [("raise", "passed", "raised"), ("nan", "passed", "nan"),
                                                      ("clamp", "failed", None)])
def test_undefined_labels_conform_when_refused(behaving, answer, outcome, refused):
    behaving["answer"] = answer
    record = run(answer, [1, 4, -1])
    assert record["outcome"] == outcome, record["message"]
    assert record.get("refused") == refused
    if answer == "raise":
        assert "refused the undefined input: IndexError" in record["message"]


def test_raising_on_valid_input_is_still_an_error(behaving, monkeypatch):
    behaving["answer"] = "raise"
    monkeypatch.setattr(Behaving, "loss", lambda self, *args: (_ for _ in ()).throw(RuntimeError("boom")))
    record = run("raise", [1, 2, 3], undefined=False)
    assert record["outcome"] == "error" and record["reason"] == "raised"


def test_the_summary_says_who_refuses_how(behaving):
    records = []
    for answer in ("raise", "nan", "clamp"):
        behaving["answer"] = answer
        records.append({**run(answer, [1, 4, -1]), "framework": answer})
    lines = summary.refusals(records)
    assert "undefined input raised: raise (1)" in lines and "undefined input nan: nan (1)" in lines
    assert "undefined input accepted (a finite number): clamp (1)" in lines


def test_the_report_has_a_table_of_who_refuses_how():
    from conformance.report import render

    records = [{"id": f"c::loss::{f}::float32::cpu", "case": "c", "op": "sparse_softmax_cross_entropy",
                "quantity": "loss", "framework": f, "dtype": "float32", "device": "cpu", "outcome": outcome,
                "refused": refused, "undefined": True}
               for f, outcome, refused in (("torch", "passed", "raised"), ("jax", "xfailed", None))]
    text = render.render({}, records, "md", with_plots=False)
    assert "## Undefined input" in text
    assert "| `torch` | 1 |" in text and "| `jax` |  |  | 1 |" in text


def entry_expecting(tmp_path, kind):
    from conformance.core import manifest

    path = tmp_path / "m.yaml"
    path.write_text("schema: 1\nentries:\n  - {id: known, match: {framework: numpy, case: labels}, action: xfail, "
                    f"expect: {kind}, reason: the behaviour this entry describes}}\n")
    return manifest.load(path)


@pytest.mark.parametrize("kind, answer, outcome", [
    ("finite", "clamp", "xfailed"),  # described: excused
    ("raises", "clamp", "failed"),  # it stopped raising and returns a finite number: noticed
    ("nan", "clamp", "failed"),
])
def test_a_manifest_entry_excuses_only_the_behaviour_it_describes(tmp_path, behaving, kind, answer, outcome):
    behaving["answer"] = answer
    case = Case(name="labels", op="sparse_softmax_cross_entropy", path="<test>", undefined=True,
                inputs={"logits": LOGITS, "labels": np.array([1, 4, -1])})
    record = Runner(manifest=entry_expecting(tmp_path, kind)).run(Check(case, "numpy", "float64", "cpu", "loss"))
    assert record["outcome"] == outcome, record["message"]
    assert record["failure"] == ["finite"]
    if outcome == "failed":
        assert record["reason"] == "manifest-mismatch"
        assert record["message"].startswith(f"known expect {kind}, but this check shows finite: numpy ")


def test_an_entry_that_expects_raising_excuses_a_raise_on_valid_input(tmp_path, behaving, monkeypatch):
    behaving["answer"] = "raise"
    monkeypatch.setattr(Behaving, "loss", lambda self, *args: (_ for _ in ()).throw(RuntimeError("boom")))
    case = Case(name="labels", op="sparse_softmax_cross_entropy", path="<test>",
                inputs={"logits": LOGITS, "labels": np.array([1, 2, 3])})
    record = Runner(manifest=entry_expecting(tmp_path, "raises")).run(Check(case, "numpy", "float64", "cpu", "loss"))
    assert record["outcome"] == "xfailed" and record["failure"] == ["raises"]


def entries(tmp_path, *kinds):
    """One xfail entry per kind, all covering the same check (one entry per cause)."""
    from conformance.core import manifest

    path = tmp_path / "m.yaml"
    lines = [f"  - {{id: cause-{i}, match: {{framework: numpy, case: labels}}, action: xfail, expect: {kind}, "
             f"reason: cause {i}}}" for i, kind in enumerate(kinds)]
    path.write_text("schema: 1\nentries:\n" + "\n".join(lines) + "\n")
    return manifest.load(path)


def test_entries_for_different_causes_excuse_together_what_each_alone_would_not(tmp_path, behaving, monkeypatch):
    behaving["answer"] = "clamp"
    clamping = Behaving.loss
    monkeypatch.setattr(Behaving, "loss", lambda self, *args: _downcast(clamping(self, *args)))
    case = Case(name="labels", op="sparse_softmax_cross_entropy", path="<test>", undefined=True,
                inputs={"logits": LOGITS, "labels": np.array([1, 4, -1])})
    check = Check(case, "numpy", "float64", "cpu", "loss")
    alone = Runner(manifest=entries(tmp_path, "finite")).run(check)
    assert alone["outcome"] == "failed" and alone["reason"] == "manifest-mismatch"
    together = Runner(manifest=entries(tmp_path, "finite", "dtype")).run(check)
    assert together["outcome"] == "xfailed", together["message"]
    assert together["manifest"] == "cause-0" and together["manifest_also"] == ["cause-1"]
    assert "cause-0: cause 0 | cause-1: cause 1" == together["message"]


def _downcast(result):
    result.dtype = "float32"  # a second, independent difference: the dtype the framework returned
    return result


@pytest.mark.parametrize("answer", ["raise", "nan"])
@pytest.mark.parametrize("kinds", [("finite",), ("dtype",), ()])
def test_an_entry_never_turns_a_conforming_refusal_into_a_fixed_divergence(tmp_path, behaving, kinds, answer):
    """A framework that refuses undefined input (a raise, or NaN where the reference is NaN) is
    right, whatever an entry about that input says: the check passes, it is no XPASS."""
    behaving["answer"] = answer
    case = Case(name="labels", op="sparse_softmax_cross_entropy", path="<test>", undefined=True,
                inputs={"logits": LOGITS, "labels": np.array([1, 4, -1])})
    runner = Runner(manifest=entries(tmp_path, *kinds) if kinds else [])
    record = runner.run(Check(case, "numpy", "float64", "cpu", "loss"))
    assert record["outcome"] == "passed", record["message"]
    assert record["refused"] == {"raise": "raised", "nan": "nan"}[answer]
