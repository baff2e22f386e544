"""Rank side of DeepSpeed's vocab_parallel_cross_entropy (deepspeed.sequence.cross_entropy, its
"torch" backend), run by conformance.sharded.local_shards on each rank of a RankPool.

Under a vocab layout the rank's logits are its columns [start, stop) of the classes, passed as
vocab_start_index / vocab_end_index with the world as tp_group (uneven shards are DeepSpeed's
own: it checks the ranks' bounds form a partition). Under a sequence layout the rank holds its
tokens with every class, and the world is the sp_group: DeepSpeed sums the loss and counts the
valid targets over the ranks for `sum` and `mean`; with `none` each rank returns its own
tokens' losses (gather_sequence_loss is not used: it gathers along the first axis, which the
suite's (batch, sequence, classes) layout keeps for the batch).

DeepSpeed's collectives go through deepspeed.comm, which needs a communication backend
(`deepspeed.init_distributed`). The RankPool has already made the default process group, and
DeepSpeed then only wraps it (its TorchBackend). That wrapper would also JIT-compile a CPU
shared-memory all-reduce op (deepspeed_shm_comm: about two minutes of two-core compilation on
first use, cached in TORCH_EXTENSIONS_DIR), which serves inference_all_reduce only: the cross
entropy's all_reduce and all_gather are torch.distributed's. So the build is skipped while the
backend is made.
"""
from __future__ import annotations

import importlib
from typing import Any

from conformance.sharded import local_shards

DEFAULT_IGNORE_INDEX = -100  # vocab_parallel_cross_entropy's default: a user who names none gets it


def vocab_parallel(job: dict) -> dict:
    """One forward and backward of DeepSpeed's loss on this rank's shard (local_shards' answer)."""
    return local_shards.forward_backward(job, _loss)


def _loss(logits: Any, labels: Any, shard: local_shards.Shard, options: dict) -> Any:
    """This rank's loss as DeepSpeed returns it to a user (local_shards' `loss`)."""
    _attach_deepspeed()
    from deepspeed.sequence.cross_entropy import vocab_parallel_cross_entropy

    taken = {"ignore_index": options.get("ignore_index", DEFAULT_IGNORE_INDEX),
             "reduction": options.get("reduction", "none"), "backend": "torch"}
    if shard.axis == "vocab":
        return vocab_parallel_cross_entropy(logits, labels, tp_group=shard.group, vocab_start_index=shard.start,
                                            vocab_end_index=shard.stop, **taken)
    if shard.axis == "sequence":
        return vocab_parallel_cross_entropy(logits, labels, sp_group=shard.group, **taken)
    raise ValueError(f"DeepSpeed's vocab_parallel_cross_entropy takes no {shard.axis} layout")


def _attach_deepspeed() -> None:
    """deepspeed.init_distributed on the existing default process group, once per rank process,
    without building the shared-memory op (see the module)."""
    import deepspeed

    comm = importlib.import_module("deepspeed.comm.comm")
    if comm.cdb is not None and comm.cdb.is_initialized():
        return
    # deepspeed.comm re-exports torch, so the module is reached by its full name
    torch_backend: Any = importlib.import_module("deepspeed.comm.torch")
    build_shm_op = torch_backend.build_shm_op
    torch_backend.build_shm_op = lambda: None
    try:
        deepspeed.init_distributed(dist_backend=_backend(), auto_mpi_discovery=False, verbose=False)
    finally:
        torch_backend.build_shm_op = build_shm_op


def _backend() -> str:
    import torch.distributed as dist

    return dist.get_backend()
