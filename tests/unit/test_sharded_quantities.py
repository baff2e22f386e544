"""The quantities only inputs split across ranks have: every rank's own loss the same bits
(rank_agreement), and the bytes the ranks' collectives carried (a record's communication)."""
import math

import numpy as np
import pytest

from conformance.adapters.api import Adapter, Capability, NotOffered, Result
from conformance.cases import Case
from conformance.core import checks, expected, quantities
from conformance.core.compare import compare
from conformance.core.quantities import rank_spread
from conformance.sharded import local_shards
from conformance.sharded.layouts import Layout

NAN = float("nan")


LAYOUTS = (Layout("vocab", 2), Layout("batch", 2), Layout("vocab", 1))


def make_case(reduction="none", layouts=LAYOUTS):
    logits = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    return Case("split", "sparse_softmax_cross_entropy", "split.yaml",
                {"logits": logits, "labels": np.array([0, 2, 1, 0])}, {"reduction": reduction},
                dtypes=("float32",), layouts=tuple(layouts))


@pytest.mark.parametrize("per_rank, spread", [
    ([[1.0, 2.0], [1.0, 2.0]], 0.0),
    ([[1.0, NAN], [1.0, NAN]], 0.0),  # NaN on every rank: the same answer
    ([[1.0, 2.0], [1.0, 2.5]], 0.5),
    ([[1.0, 2.0], [1.0, 2.0], [1.25, 2.0]], 0.25),  # any rank against rank 0
    ([[1.0, 2.0], [1.0, NAN]], math.inf),  # NaN on one rank only
    ([[1.0, 2.0], [1.0]], math.inf),  # a rank with another shape
    ([[0.0], [-0.0]], 0.0),  # equal values
])
def test_the_spread_of_the_ranks_values(per_rank, spread):
    assert rank_spread([np.asarray(v) for v in per_rank]) == spread


def test_agreement_is_checked_where_several_ranks_each_hold_the_whole_loss():
    row = quantities.quantity("rank_agreement")
    unreduced, summed = make_case("none"), make_case("sum")
    assert row.applies_under(unreduced, Layout("vocab", 2))
    assert not row.applies_under(unreduced, Layout("vocab", 1))  # one rank: nothing to agree with
    assert not row.applies_under(unreduced, Layout("batch", 2))  # each rank holds its own tokens' losses
    assert row.applies_under(summed, Layout("batch", 2))  # a reduced loss: every rank holds all of it
    assert not row.applies_under(summed, None)
    assert quantities.quantity("loss").applies_under(unreduced, None)


def test_unsplit_checks_get_no_sharded_quantity():
    generated = list(checks.generate([make_case("sum")], ["numpy"], ("cpu",)))
    assert generated and "rank_agreement" not in {c.quantity for c in generated}


class Ranks(Adapter):
    framework = "two-ranks"
    capabilities = {"sparse_softmax_cross_entropy": Capability(object(), layouts=("vocab",))}

    def __init__(self, per_rank):
        self.per_rank = per_rank

    def loss(self, op, prediction, labels, options, dtype, device, layout=None):
        values = None if self.per_rank is None else [np.asarray(v) for v in self.per_rank]
        return Result(np.zeros(4), dtype, device, "eager", per_rank=values)


def agreement(adapter):
    case = make_case()
    given = quantities.CallInputs("two-ranks", ("sparse_softmax_cross_entropy", case.prediction, case.labels,
                                                case.options, "float32", "cpu"),
                                  lambda: np.ones(4), lambda: np.ones((4, 3)), Layout("vocab", 2))
    row = quantities.quantity("rank_agreement")
    return row.call(adapter, row, given)


def test_the_agreement_call_returns_the_spread_and_keeps_the_dtype():
    result = agreement(Ranks([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.5, 4.0]]))
    assert float(result.values) == 0.5 and result.dtype == "float32" and result.mode == "eager"
    check = checks.Check(make_case(), "two-ranks", "float32", "cpu", "rank_agreement", layout=Layout("vocab", 2))
    want, scale, tolerance = expected.fixed_expectation(check, {})
    assert not compare(want, result.values, scale, "float32", tolerance, "float32").passed
    agreed = agreement(Ranks([[1.0, NAN, 3.0, 4.0]] * 2))
    assert compare(want, agreed.values, scale, "float32", tolerance, "float32").passed


def test_an_adapter_that_returns_no_ranks_values_is_not_offered_the_agreement():
    with pytest.raises(NotOffered, match="no rank's own value"):
        agreement(Ranks(None))


def answers(sent):
    return [{"bytes": each} for each in sent]


def test_communication_is_read_against_one_float32_per_token_of_a_rank():
    job = {"labels": np.zeros((6,), np.int64), "layout": {"axis": "vocab", "ranks": 2}}
    record = local_shards.communication(answers([{"allreduce": 72}, {"allreduce": 80}]), job)
    assert record == {"bytes": {"allreduce": 72}, "max_bytes_per_rank": 80, "floor_bytes": 24}
    job["layout"] = {"axis": "batch", "ranks": 4}  # each rank holds ceil(6 / 4) tokens
    assert local_shards.communication(answers([{}] * 4), job)["floor_bytes"] == 8
    job["layout"] = {"axis": "vocab", "ranks": 1}  # nothing crosses ranks in a world of one
    assert local_shards.communication(answers([{"allreduce": 72}]), job)["max_bytes_per_rank"] == 0


@pytest.mark.parametrize("values, baseline, want", [
    ([1.0, 2.0], [1.0, 2.5], [0.0, -0.5]),
    ([NAN, math.inf], [NAN, math.inf], [0.0, 0.0]),  # the same answer at both
    ([NAN, 1.0], [1.0, NAN], [NAN, NAN]),  # NaN on one side only
    ([math.inf], [-math.inf], [math.inf]),  # unlike 0, as a NaN is
])
def test_the_difference_of_two_results(values, baseline, want):
    np.testing.assert_array_equal(quantities.difference(np.array(values), np.array(baseline)), np.array(want))


class Layouts(Adapter):
    """A loss that depends on the number of ranks: `offset` per rank beyond the first."""

    framework = "two-ranks"
    capabilities = {"sparse_softmax_cross_entropy": Capability(object(), layouts=("vocab",))}

    def __init__(self, offset=0.0, raise_at_one=False):
        self.offset, self.raise_at_one, self.seen = offset, raise_at_one, []

    def loss(self, op, prediction, labels, options, dtype, device, layout=None):
        self.seen.append(layout)
        if self.raise_at_one and layout.ranks == 1:
            return Result(None, "", device, "eager", raised=ValueError("no"))
        return Result(np.full(4, 1.0 + self.offset * (layout.ranks - 1)), dtype, device, "eager")


def same_as_one_rank(adapter):
    case = make_case()
    given = quantities.CallInputs("two-ranks", ("sparse_softmax_cross_entropy", case.prediction, case.labels,
                                                case.options, "float32", "cpu"),
                                  lambda: np.ones(4), lambda: np.ones((4, 3)), Layout("vocab", 2))
    row = quantities.quantity("same_as_one_rank")
    return row.call(adapter, row, given)


def test_the_loss_at_several_ranks_is_compared_with_the_same_framework_at_one():
    adapter = Layouts(offset=0.25)
    result = same_as_one_rank(adapter)
    assert adapter.seen == [Layout("vocab", 2), Layout("vocab", 1)]
    np.testing.assert_array_equal(result.values, np.full(4, 0.25))
    assert isinstance(same_as_one_rank(Layouts(raise_at_one=True)).raised, RuntimeError)


def test_two_results_are_allowed_twice_the_bound_of_one():
    reference, scale = np.array([2.0, 0.5, NAN]), np.array([3.0, 1.0, 1.0])
    loss = expected.tol.Tolerance(4.0, 2.0, 1e-9)
    zero, kept, tolerance = expected.difference_expectation(reference, scale, loss, "float32")
    assert np.all(zero == 0) and kept is scale
    one = expected.tol.bound(reference, scale, "float32", loss)
    np.testing.assert_allclose(expected.tol.bound(zero, scale, "float32", tolerance)[:2], 2 * one[:2], rtol=1e-12)
    assert tolerance.abs[2] == 0.0  # an undefined reference widens nothing


def test_the_dtype_a_loss_came_back_in_is_judged_by_loss_dtype_alone():
    class Float32Loss(Ranks):
        def loss(self, *args, **kwargs):
            result = super().loss(*args, **kwargs)
            result.dtype = "float64"  # a float64 loss for float32 inputs, say
            return result

    assert agreement(Float32Loss([[1.0], [1.0]])).dtype == "float32"
