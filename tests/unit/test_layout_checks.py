"""Layouts as a dimension of a check: the case files' `layouts` key, check ids and records, which
frameworks get layout checks, the call's `layout=` and the refusals on the way."""
import textwrap
from importlib import metadata

import numpy as np
import pytest

from conformance import adapters, frameworks
from conformance.adapters.api import Adapter, Capability, RankFailed, Result
from conformance.cases import CaseError, load_case_file
from conformance.core import checks, conditions, quantities, stages
from conformance.core.checks import Check
from conformance.core.runner import base_record
from conformance.sharded.layouts import Layout

CASE = """
schema: 1
cases:
  - name: split
    op: sparse_softmax_cross_entropy
    inputs:
      logits: {{generate: normal, shape: [4, 6], seed: 1}}
      labels: [0, 5, 2, 1]
    layouts: {layouts}
"""


def load(tmp_path, layouts: str):
    path = tmp_path / "split.yaml"
    path.write_text(textwrap.dedent(CASE.format(layouts=layouts)))
    return load_case_file(path)


def test_a_case_names_its_layouts(tmp_path):
    (case,) = load(tmp_path, "[{vocab: 2}, {batch: 4}, {vocab: 1}]")
    assert case.layouts == (Layout("vocab", 2), Layout("batch", 4), Layout("vocab", 1))


@pytest.mark.parametrize("layouts, key, says", [
    ("[{vocab: 2}, {tensor: 2}]", "layouts[1]", "'tensor' is not an axis"),
    ("[{vocab: 7}]", "layouts[0]", "7 ranks is a split larger than the vocab axis"),
    ("[{batch: 5}]", "layouts[0]", "5 ranks is a split larger than the batch axis"),
    ("[{sequence: 2}]", "layouts[0]", "has no sequence axis"),
    ("[{vocab: 0}]", "layouts[0]", "an int >= 1"),
    ("[{vocab: 2, batch: 2}]", "layouts[0]", "a mapping of one axis"),
    ("[{vocab: 2}, {vocab: 2}]", "layouts[1]", "vocab2 is listed twice"),
    ("{vocab: 2}", "layouts", "expected list"),
])
def test_a_layout_the_case_cannot_take_is_refused_naming_file_case_and_key(tmp_path, layouts, key, says):
    with pytest.raises(CaseError) as info:
        load(tmp_path, layouts)
    message = str(info.value)
    assert "split.yaml" in message and "case 'split'" in message and f"key '{key}'" in message
    assert says in message


def test_an_op_without_a_class_axis_takes_no_vocab_layout(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_text(textwrap.dedent("""
        schema: 1
        cases:
          - name: binary
            op: sigmoid_cross_entropy
            inputs: {logits: [0.5, -1.0], labels: [1, 0]}
            layouts: [{vocab: 2}]
    """))
    with pytest.raises(CaseError, match="key 'layouts\\[0\\]': sigmoid_cross_entropy has no class axis"):
        load_case_file(path)


def test_an_unsharded_check_keeps_its_id_and_a_sharded_one_names_its_layout(tmp_path):
    (case,) = load(tmp_path, "[{vocab: 2}]")
    plain = Check(case, "torch", "float32", "cpu", "loss")
    split = Check(case, "torch", "float32", "cpu", "loss", layout=Layout("vocab", 2))
    assert plain.id == "split::loss::torch::float32::cpu" and plain.param_id == "split-torch-float32-cpu-loss"
    assert split.id == "split::loss::torch::float32::cpu::vocab2"
    assert split.param_id == "split-torch-float32-cpu-loss-vocab2"
    assert base_record(plain)["layout"] is None
    assert base_record(split)["layout"] == {"axis": "vocab", "ranks": 2}


def test_a_framework_without_layouts_gets_the_checks_it_got_before(tmp_path):
    (case,) = load(tmp_path, "[{vocab: 2}, {batch: 2}]")
    (bare,) = load(tmp_path, "[]")
    generated = [c.id for c in checks.generate([case], ["numpy"], ("cpu",))]
    assert generated == [c.id for c in checks.generate([bare], ["numpy"], ("cpu",))]
    assert generated and all("::vocab" not in i and "::batch" not in i for i in generated)


def test_a_framework_with_layouts_gets_each_layout_on_an_axis_it_takes(tmp_path, monkeypatch):
    (case,) = load(tmp_path, "[{vocab: 2}, {batch: 2}, {vocab: 1}]")
    monkeypatch.setattr(frameworks, "layouts_of", lambda framework: ("vocab",) if framework == "split-kernel" else ())
    generated = list(checks.generate([case], ["split-kernel"], ("cpu",)))
    def per_layout(layout):
        return [(layout, d, q.name) for d in case.dtypes for q in quantities.of_case(case, layout)]

    assert [(c.layout, c.dtype, c.quantity) for c in generated] == (
        per_layout(Layout("vocab", 2)) + per_layout(Layout("vocab", 1)))
    # the ranks' agreement is a check of several ranks only
    assert {c.layout for c in generated if c.quantity == "rank_agreement"} == {Layout("vocab", 2)}


def test_layouts_are_read_from_a_plug_ins_class_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "splitpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "adapter.py").write_text(textwrap.dedent("""
        raise ImportError("read, never run")

        class Base:
            layouts = ("vocab", "batch")

        class SplitAdapter(Base):
            framework = "split-kernel"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    point = metadata.EntryPoint("split-kernel", "splitpkg.adapter:SplitAdapter", frameworks.PLUGIN_GROUP)
    monkeypatch.setattr(frameworks.metadata, "entry_points", lambda group: [point] if group == point.group else [])
    frameworks.layouts_of.cache_clear()
    try:
        assert frameworks.layouts_of("split-kernel") == ("vocab", "batch")
        assert frameworks.layouts_of("numpy") == () and frameworks.layouts_of("unknown-kernel") == ()
    finally:
        frameworks.layouts_of.cache_clear()


class SplitAdapter(Adapter):
    """Takes vocab layouts; records the layout each call received."""

    framework = "split-kernel"
    capabilities = {"sparse_softmax_cross_entropy": Capability(lambda: None, layouts={"vocab"})}

    def __init__(self, fail=None):
        self.seen, self.fail = [], fail

    def loss(self, op, prediction, labels, options, dtype, device, layout=None):
        if self.fail:
            raise self.fail
        self.seen.append(layout)
        return Result(np.zeros(labels.shape), dtype, device)


class PlainAdapter(Adapter):
    """An adapter written before layouts: its loss takes no layout."""

    framework = "plain-kernel"
    capabilities = {"sparse_softmax_cross_entropy": Capability(lambda: None)}

    def loss(self, op, prediction, labels, options, dtype, device):
        return Result(np.zeros(labels.shape), dtype, device)


def called(adapter, check):
    cast = {"logits": check.case.prediction, "labels": check.case.labels}
    return stages.call(adapter, check, "exact", cast, dict(cast), {}).returned


def test_the_call_passes_a_layout_only_where_the_check_has_one(tmp_path):
    (case,) = load(tmp_path, "[{vocab: 2}]")
    split = SplitAdapter()
    called(split, Check(case, "split-kernel", "float64", "cpu", "loss", layout=Layout("vocab", 2)))
    assert split.seen == [Layout("vocab", 2)]
    returned = called(PlainAdapter(), Check(case, "plain-kernel", "float64", "cpu", "loss"))
    assert isinstance(returned, Result)


def test_a_layout_axis_the_capability_does_not_declare_is_not_offered(tmp_path):
    (case,) = load(tmp_path, "[{batch: 2}]")
    check = Check(case, "split-kernel", "float64", "cpu", "loss", layout=Layout("batch", 2))
    with pytest.raises(stages.Decided) as info:
        stages.offered(SplitAdapter(), check, {})
    assert (info.value.outcome, info.value.reason) == ("skipped", "not-offered")
    assert "batch axis" in info.value.message
    assert stages.offered(SplitAdapter(), Check(case, "split-kernel", "float64", "cpu", "loss",
                                                layout=Layout("vocab", 2)), {}).layouts == {"vocab"}


def test_a_rank_that_died_is_an_error_naming_it_and_a_raise_is_the_frameworks(tmp_path):
    (case,) = load(tmp_path, "[{vocab: 2}]")
    check = Check(case, "split-kernel", "float64", "cpu", "loss", layout=Layout("vocab", 2))
    with pytest.raises(stages.Decided) as info:
        called(SplitAdapter(fail=RankFailed("rank 1 died (exit code -9) during the job")), check)
    assert (info.value.outcome, info.value.reason) == ("error", "rank-failed") and "rank 1" in info.value.message
    assert isinstance(called(SplitAdapter(fail=RuntimeError("every rank raised")), check), RuntimeError)
    assert adapters.RankFailed is RankFailed


@pytest.mark.parametrize("labels, weight, layout, unequal", [
    ([0, 1, 2, 3], None, Layout("batch", 2), False),  # two counted targets on each rank
    ([0, 1, 2, -100], None, Layout("batch", 2), True),  # two and one
    ([0, 1, -100, -100], None, Layout("batch", 2), True),  # a rank with none
    ([0, 1, 0, 1], [1.0, 2.0, 1.0, 1.0], Layout("batch", 2), False),  # the same weights on each rank
    ([0, 0, 1, 1], [1.0, 2.0, 1.0, 1.0], Layout("batch", 2), True),
    ([0, 1, 2, -100], None, Layout("batch", 1), False),  # one rank holds every target
    ([0, 1, 2, -100], None, Layout("vocab", 2), False),  # every rank holds every target
    ([0, 1, 2, -100], None, None, False),
])
def test_ranks_weigh_targets_unequally(labels, weight, layout, unequal):
    options = {"reduction": "mean", "ignore_index": -100, **({"weight": weight} if weight else {})}
    inputs = conditions.Inputs("sparse_softmax_cross_entropy", options, np.zeros((4, 4)), np.array(labels), layout)
    assert conditions.PREDICATES["ranks_weigh_targets_unequally"][0](inputs, None) is unequal
