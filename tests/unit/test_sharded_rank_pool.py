"""The rank pool: 2 gloo ranks started once for the module and reused; a rank that raises is
named in its place, a rank that dies or hangs ends its job with an error naming it, and the
pool serves the next job."""
import os
import time

import pytest

pytest.importorskip("torch.distributed")

from conformance.sharded.rank_pool import RankPool, RankPoolError, RankRaised  # noqa: E402

HANG_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def pool():
    with RankPool(2, backend="gloo") as started:
        yield started


# Jobs: functions of this module, which the spawned ranks import by name.
def rank_and_sum(payload):
    import torch
    import torch.distributed as dist

    value = torch.tensor([payload * (dist.get_rank() + 1)], dtype=torch.float64)
    dist.all_reduce(value)  # the ranks meet through torch.distributed
    return dist.get_rank(), dist.get_world_size(), os.getpid(), float(value)


def raise_on_rank_one(payload):
    import torch.distributed as dist

    if dist.get_rank() == 1:
        raise ValueError(f"rank one refuses {payload}")
    return "fine"


def exit_on_rank_one(payload):
    import torch.distributed as dist

    if dist.get_rank() == 1:
        os._exit(3)
    return "fine"


def hang_on_rank_zero(payload):
    import torch.distributed as dist

    if dist.get_rank() == 0:
        time.sleep(60)
    return "fine"


def test_a_job_returns_each_ranks_value_in_rank_order(pool):
    first = pool.run(rank_and_sum, 10.0, timeout_s=60)
    assert [(rank, world, total) for rank, world, _, total in first] == [(0, 2, 30.0), (1, 2, 30.0)]
    again = pool.run("test_sharded_rank_pool:rank_and_sum", 1.0, timeout_s=60)  # by qualified name
    assert [total for *_, total in again] == [3.0, 3.0]
    assert [pid for _, _, pid, _ in again] == [pid for _, _, pid, _ in first]  # the same processes


def test_a_raising_rank_is_named_in_its_place(pool):
    answers = pool.run(raise_on_rank_one, "the job", timeout_s=60)
    assert answers[0] == "fine"
    assert isinstance(answers[1], RankRaised) and answers[1].rank == 1
    assert str(answers[1]) == "rank 1 raised ValueError: rank one refuses the job"
    assert "raise_on_rank_one" in answers[1].trace
    assert [total for *_, total in pool.run(rank_and_sum, 1.0)] == [3.0, 3.0]


def test_a_rank_that_dies_is_named_and_the_pool_goes_on(pool):
    starts = pool.starts
    with pytest.raises(RankPoolError, match=r"^rank 1 died \(exit code 3\)") as raised:
        pool.run(exit_on_rank_one, None, timeout_s=60)
    assert raised.value.ranks == (1,)
    assert [total for *_, total in pool.run(rank_and_sum, 1.0)] == [3.0, 3.0]
    assert pool.starts == starts + 1


def test_a_rank_that_hangs_past_its_timeout_is_named_and_the_pool_goes_on(pool):
    began = time.monotonic()
    with pytest.raises(RankPoolError, match=rf"^rank 0 did not answer the job within {HANG_TIMEOUT_S:g} s") as raised:
        pool.run(hang_on_rank_zero, None, timeout_s=HANG_TIMEOUT_S)
    assert raised.value.ranks == (0,)
    assert time.monotonic() - began < HANG_TIMEOUT_S + 15  # the rank was stopped, not waited for
    assert [total for *_, total in pool.run(rank_and_sum, 1.0)] == [3.0, 3.0]


def test_a_pool_needs_a_whole_number_of_ranks():
    with pytest.raises(ValueError, match="int >= 1"):
        RankPool(0)


def test_a_job_that_cannot_reach_the_ranks_is_refused_in_a_sentence(pool):
    starts = pool.starts
    with pytest.raises(TypeError, match="module-level function or its 'package.module:function' name"):
        pool.run(lambda payload: payload, None)
    assert pool.starts == starts and [total for *_, total in pool.run(rank_and_sum, 1.0)] == [3.0, 3.0]
