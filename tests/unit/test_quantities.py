"""The quantity table: every module reads its facts from it, and the checks it generates are
those the suite generated before it, in the same order."""
from pathlib import Path

import numpy as np
import pytest

from conformance import adapters
from conformance.adapters import api
from conformance.adapters.api import Adapter, Capability, Result
from conformance.cases import Case, load_cases, schema
from conformance.core import checks, quantities
from conformance.core.checks import Check
from conformance.core.runner import Runner
from conformance.hunt import search
from conformance.report import model
from reference.registry import OPS

ROOT = Path(__file__).resolve().parents[2]
ROWS = list(quantities.QUANTITIES.values())


def legacy_quantities(case):
    """The quantities of one case, dtype and device as generate chose them before the table."""
    has_grad, weighed = quantities.has_reference_grad, quantities.has_losses_to_weigh
    reduced = case.options.get("reduction", "none") != "none"
    chosen = ["loss"]
    chosen += [q for q in ("grad_logits", "grad_labels") if case.grad and has_grad(case.op, q)]
    for tensor in (name for name in OPS[case.op].tensors if name in case.inputs) if case.grad else ():
        chosen.append(f"grad_{tensor}")
        if weighed(case):
            chosen.append(f"vjp_{tensor}")
    chosen += [q for q, g in (("vjp_logits", "grad_logits"), ("vjp_labels", "grad_labels"))
               if case.grad and weighed(case) and has_grad(case.op, g)]
    if case.grad and has_grad(case.op, "grad_logits") and (weighed(case) or reduced):
        chosen += ["inputs_intact", "second_backward"]
    if case.grad and has_grad(case.op, "grad_logits") and not OPS[case.op].head:
        chosen.append("jvp")
    return chosen


def test_every_case_file_gets_the_quantities_it_got_before_in_that_order():
    cases = load_cases([ROOT / "cases"])
    assert len(cases) > 50
    for case in cases:
        table = [q.name for q in quantities.of_case(case) if q.name != "loss_dtype"]
        assert table == legacy_quantities(case), case.name


def test_generate_yields_each_case_framework_device_dtype_then_the_pinned_numbers():
    (case,) = [c for c in load_cases([ROOT / "cases"]) if c.pinned and len(c.dtypes) > 1][:1]
    generated = list(checks.generate([case], ["a", "b"], ("cpu", "cuda")))
    per_dtype = [q.name for q in quantities.of_case(case)]
    expected = []
    for framework in ("a", "b"):
        for device in ("cpu", "cuda"):
            expected += [(framework, device, d, q, None) for d in case.dtypes for q in per_dtype]
            expected += [(framework, device, p.dtype, p.quantity, p) for p in case.pinned]
    assert [(c.framework, c.device, c.dtype, c.quantity, c.pinned) for c in generated] == expected


def test_the_table_holds_what_the_old_tables_held():
    rows = quantities.QUANTITIES.values()
    assert {q.name: q.gradient for q in rows if q.gradient} == {
        "grad_logits": "grad_logits", "grad_labels": "grad_labels", "vjp_logits": "grad_logits",
        "vjp_labels": "grad_labels", "jvp": "grad_logits", "second_backward": "grad_logits",
        "inputs_intact": "grad_logits", "grad_linear_weight": "grad_linear_weight",
        "grad_linear_bias": "grad_linear_bias", "vjp_linear_weight": "grad_linear_weight",
        "vjp_linear_bias": "grad_linear_bias"}
    assert {q.name: q.wrt for q in rows if q.gradient == q.name} == {
        "grad_logits": "prediction", "grad_labels": "labels", "grad_linear_weight": "linear_weight",
        "grad_linear_bias": "linear_bias"}
    assert {q.name for q in rows if q.vjp} == {"vjp_logits", "vjp_labels", "second_backward", "vjp_linear_weight",
                                               "vjp_linear_bias"}
    assert quantities.PROBES == api.PROBE_QUANTITIES == ("inputs_intact", "second_backward")
    assert api.QUANTITIES == ("loss", "grad_logits", "grad_labels", "grad_linear_weight", "grad_linear_bias")
    assert schema.PINNED_QUANTITIES == ("loss", "grad_logits", "grad_labels")
    assert search.QUANTITIES == ("loss", "grad_logits")
    assert [quantities.quantity(q).wrt for q in ("vjp_labels", "jvp", "vjp_linear_bias")] == [
        "labels", "prediction", "linear_bias"]


def test_the_report_orders_and_names_quantities_from_the_table():
    assert model.QUANTITY_ORDER == (
        "loss", "loss_dtype", "grad_logits", "grad_labels", "grad_linear_weight", "grad_linear_bias", "vjp_logits",
        "vjp_labels", "vjp_linear_weight", "vjp_linear_bias", "jvp", "inputs_intact", "second_backward",
        "rank_agreement", "same_as_one_rank")
    assert model.QUANTITY_LABELS["vjp_logits"] == "VJP, random cotangent"
    assert set(model.QUANTITY_LABELS) == set(checks.QUANTITIES) == set(quantities.NAMES)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_each_row_is_consistent(row):
    if row.gradient:  # the gradient it is built from is a row of its own, with what it is taken with respect to
        base = quantities.QUANTITIES[row.gradient]
        assert base.gradient == base.name and base.wrt == row.wrt
    else:
        assert row.wrt is None and not row.vjp and not row.probe
    assert row.vjp == (row.expected == "vjp")
    assert row.probe == (row.call is quantities.call_probe)
    assert not row.pinnable or row.expected in ("loss", "gradient")
    # a quantity shares another's expected values as they are, or as the bound of a difference of two of them
    assert row.shares is None or row.expected in (quantities.QUANTITIES[row.shares].expected, "difference")


def test_orders_are_distinct_and_an_unknown_quantity_is_named():
    assert sorted(q.order for q in ROWS) == list(range(len(ROWS)))
    with pytest.raises(KeyError, match="unknown quantity 'grad_lgoits'"):
        quantities.quantity("grad_lgoits")


def _sparse(z, labels, options):
    shifted = z - z.max(axis=-1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=-1)) - np.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]


class Widening(Adapter):
    """Computes in float64 and returns float64, or the dtype it was given (honest)."""

    framework = "widening-kernel"
    capabilities = {"sparse_softmax_cross_entropy": Capability(_sparse, dtypes=("float32", "float64"),
                                                                modes=("eager", "jit"))}
    honest = False

    def version(self):
        return "1.0"

    def loss(self, op, prediction, labels, options, dtype, device):
        out = _sparse(np.asarray(prediction, np.float64), np.asarray(labels), options)
        returned = dtype if self.honest else "float64"
        return api.results_in_modes(self.capability(op).modes, lambda mode: Result(
            out.astype(dtype).astype(np.float64), returned if mode == "jit" else dtype, "cpu"))


@pytest.mark.parametrize("honest", [True, False])
def test_loss_dtype_judges_the_dtype_each_mode_returned(monkeypatch, honest):
    case = Case(name="small", op="sparse_softmax_cross_entropy", path="<test>",
                inputs={"logits": np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 2.0]]), "labels": np.array([1, 2])})
    adapter = Widening()
    adapter.honest = honest
    monkeypatch.setattr(adapters, "load", lambda name: adapter)
    monkeypatch.setattr(api, "_SELECTED_MODES", None)  # every mode, whatever --modes this process was given
    record = Runner(manifest=[]).run(Check(case, "widening-kernel", "float32", "cpu", "loss_dtype"))
    assert record["outcome"] == ("passed" if honest else "failed"), record["message"]
    assert record["max_ulp_err"] == 0  # the value is not what this check judges
    if not honest:
        assert "jit" in record["message"] and "returned float64 for float32 inputs" in record["message"]


def test_loss_dtype_is_not_checked_on_undefined_input():
    inputs = {"logits": np.array([[1.0, 2.0, 0.5]]), "labels": np.array([1])}
    defined = Case(name="d", op="sparse_softmax_cross_entropy", path="<t>", inputs=inputs)
    undefined = Case(name="u", op="sparse_softmax_cross_entropy", path="<t>", inputs=inputs, undefined=True)
    assert "loss_dtype" in [q.name for q in quantities.of_case(defined)]
    assert "loss_dtype" not in [q.name for q in quantities.of_case(undefined)]
