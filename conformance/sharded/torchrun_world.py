"""A RankPool attached to the world torchrun started (see rank_pool's docstring for the command).

Rank 0 is the caller. Jobs go out with `broadcast_object_list` from rank 0 and answers come
back with `gather_object` to rank 0; every other rank serves in `join` and leaves the process
when rank 0 sends the end. A rank that dies ends the world, as torchrun ends it; a hang is
bounded by the process group's timeout.
"""
from __future__ import annotations

import datetime
import os
import sys
from typing import Any, Callable

from conformance.sharded import rank_pool

_END = "__end__"
_ATTACHED: list["rank_pool.RankPool"] = []  # the one pool of this process's world, once joined


def world_pool(backend: str | None = None) -> "rank_pool.RankPool":
    """The pool of the world torchrun started, joined on first use and shared by every caller in
    the process (a world is joined once; every job of the process goes to it). On a rank other
    than 0 this serves jobs and leaves the process."""
    if not _ATTACHED:
        _ATTACHED.append(rank_pool.RankPool(int(os.environ["WORLD_SIZE"]), backend).__enter__())
    return _ATTACHED[0]


def join(pool: "rank_pool.RankPool") -> None:
    """Join torchrun's world; on a rank other than 0, serve jobs and then leave the process."""
    import torch
    import torch.distributed as dist

    world = int(os.environ["WORLD_SIZE"])
    if world != pool.n:
        raise ValueError(f"torchrun started {world} ranks, the pool was asked for {pool.n}")
    if pool.backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(pool.backend, timeout=datetime.timedelta(seconds=rank_pool.COLLECTIVE_TIMEOUT_S))
    pool.starts += 1
    if dist.get_rank() == 0:
        return
    torch.set_num_threads(max(1, torch.get_num_threads() // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    while True:
        message: list[Any] = [None]
        dist.broadcast_object_list(message, src=0)
        if message[0] == _END:
            break
        job, payload = message[0]
        dist.gather_object(rank_pool.run_job(dist.get_rank(), job, payload), None, dst=0)
    dist.destroy_process_group()
    sys.exit(0)


def run(pool: "rank_pool.RankPool", job: str | Callable, payload: Any) -> list[Any]:
    """Rank 0's side of a job: send it, run its own share, gather every rank's answer."""
    import torch.distributed as dist

    dist.broadcast_object_list([(job, payload)], src=0)
    answers = [None] * pool.n
    dist.gather_object(rank_pool.run_job(0, job, payload), answers, dst=0)
    return answers


def leave(pool: "rank_pool.RankPool") -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.broadcast_object_list([_END], src=0)
        dist.destroy_process_group()
