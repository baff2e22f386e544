"""PyTorch DTensor cross-entropy on the ranks of a RankPool, and the caller's assembly of it.

Two implementations, both `F.cross_entropy` on DTensors over a 1-D DeviceMesh of the world:
- vocab_parallel: the logits sharded on the class axis (Shard(1)) under
  `torch.distributed.tensor.parallel.loss_parallel()`; labels and class weights are plain
  tensors (every rank holds them whole). loss_parallel raises on label_smoothing: the raise is
  returned, and the caller judges it.
- batch_sharded: the logits and labels sharded on the batch (Shard(0)) or sequence axis (the
  first spatial axis, Shard(2) of the logits) with default sharding propagation; class weights
  replicated.

A rank's job takes a payload (`payload(...)`): the global inputs in PyTorch's layout (classes on
axis 1), float64 values the dtype under test holds, and the layout; each rank cuts its own
shard (layouts.split, the same ranges as DTensor's Shard) and wraps it with
`DTensor.from_local`, so no collective runs before the loss. One forward and backward runs
under `CommDebugMode`, which counts the collectives by kind. The answer is the loss as the
rank reads it (`full_tensor()`), its placements, the rank's local gradient shard, and the
counts. `call` runs a job on a pool and gathers the shards into the global gradient.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from conformance.sharded import layouts, local_shards
from conformance.sharded.layouts import Layout

TORCH_DTYPES = ("float64", "float32", "bfloat16", "float16")
OPTIONS = ("reduction", "ignore_index", "weight", "label_smoothing")


def payload(logits: np.ndarray, labels: np.ndarray, layout: Layout, dtype: str = "float32",
            options: Mapping | None = None, cotangent: np.ndarray | float | None = None,
            probe: bool = False) -> dict:
    """A job's payload. logits: (N, C) or (N, C, d1, ...), classes on axis 1; labels: (N, d1, ...)
    integers; options: reduction, ignore_index, weight (C floats), label_smoothing; cotangent:
    the seeded product's cotangent, one value per loss (reduction none) or a scalar; None: the
    gradient of the summed loss; probe: a second backward of the same forward, and the inputs
    read back afterwards."""
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(TORCH_DTYPES)}")
    unknown = sorted(set(options or {}) - set(OPTIONS))
    if unknown:
        raise ValueError(f"options {unknown}: the DTensor calls take {', '.join(OPTIONS)}")
    layouts.check_shape(layout, np.shape(logits), class_axis=1, where=f"DTensor {layout.name}")
    return {"logits": np.asarray(logits, dtype=np.float64), "labels": np.asarray(labels, dtype=np.int64),
            "layout": layout.as_record(), "dtype": dtype, "options": dict(options or {}),
            "cotangent": None if cotangent is None else np.asarray(cotangent, dtype=np.float64), "probe": probe}


def vocab_parallel(job: dict) -> dict:
    """Rank side: loss_parallel() on class-sharded logits."""
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor.parallel import loss_parallel

    # loss_parallel() (torch 2.13) restores DTensor's op handlers only on a clean exit: after a
    # raise inside it (label_smoothing), every later DTensor cross-entropy in the process would
    # still take its path. The rank serves further jobs, so it puts the handlers back itself.
    handlers = DTensor._op_dispatcher._custom_op_handlers
    before = dict(handlers)
    try:
        with loss_parallel():
            return _forward_backward(job, labels_sharded=False)
    finally:
        handlers.clear()
        handlers.update(before)


def batch_sharded(job: dict) -> dict:
    """Rank side: plain F.cross_entropy on batch- (or sequence-) sharded logits and labels."""
    return _forward_backward(job, labels_sharded=True)


RANK_FUNCTIONS = {"vocab": "conformance.sharded.torch_dtensor:vocab_parallel",
                  "batch": "conformance.sharded.torch_dtensor:batch_sharded",
                  "sequence": "conformance.sharded.torch_dtensor:batch_sharded"}


def call(pool, job: dict, timeout_s: float = 120.0) -> dict:
    """Run a payload on the pool (the implementation its layout calls for) and assemble it:
    each rank's loss, the gathered gradient (PyTorch layout), the collectives counted; or, where
    a rank raised, `raised` with each raising rank's text. A rank that dies or hangs raises
    rank_pool.RankPoolError."""
    layout = Layout(**job["layout"])
    answers = pool.run(RANK_FUNCTIONS[layout.axis], job, timeout_s)
    raised = [str(answer) for answer in answers if not isinstance(answer, dict)]
    if raised:
        return {"layout": layout.name, "raised": raised}
    logits_axis = layout.axis_index(job["logits"].ndim, class_axis=1)
    assembled = {"layout": layout.name, "losses": [answer["loss"] for answer in answers], "loss": answers[0]["loss"],
                 "loss_dtype": answers[0]["loss_dtype"], "loss_placements": answers[0]["loss_placements"],
                 "gradient": layouts.gather_axis([answer["gradient"] for answer in answers], logits_axis),
                 "gradient_dtype": answers[0]["gradient_dtype"], "collectives": answers[0]["collectives"],
                 "communication": local_shards.communication(answers, job)}
    if job.get("probe"):
        assembled["second"] = layouts.gather_axis([answer["second"] for answer in answers], logits_axis)
        assembled["logits_after"] = layouts.gather_axis([answer["logits_after"] for answer in answers], logits_axis)
        labels_axis = layout.labels_axis_index(job["logits"].ndim, class_axis=1)
        after = [answer["labels_after"] for answer in answers]
        assembled["labels_after"] = after[0] if labels_axis is None else layouts.gather_axis(after, labels_axis)
    return assembled


def _forward_backward(job: dict, labels_sharded: bool) -> dict:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.distributed.device_mesh import init_device_mesh

    rank, layout = dist.get_rank(), Layout(**job["layout"])
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    mesh = init_device_mesh(device, (layout.ranks,))
    dtype = getattr(torch, job["dtype"])
    logits_axis = layout.axis_index(job["logits"].ndim, class_axis=1)  # classes on axis 1, as PyTorch takes them
    logits = _shard(job["logits"], logits_axis, mesh, rank, dtype, device).requires_grad_()
    labels: Any = torch.from_numpy(job["labels"]).to(device)
    if labels_sharded:
        labels_axis = layout.labels_axis_index(job["logits"].ndim, class_axis=1)
        assert labels_axis is not None, "labels are split under batch and sequence layouts only"
        labels = _shard(job["labels"], labels_axis, mesh, rank, torch.int64, device)
    options = dict(job["options"])
    if options.get("weight") is not None:
        weight = torch.from_numpy(np.asarray(options["weight"], dtype=np.float64)).to(device=device, dtype=dtype)
        options["weight"] = _replicated(weight, mesh) if labels_sharded else weight
    probe = bool(job.get("probe"))
    with local_shards.collective_bytes() as comm:
        loss: Any = F.cross_entropy(logits, labels, **options)  # a DTensor
        cotangent = _cotangent(job["cotangent"], loss, mesh, rank, dtype, device)
        gradient = torch.autograd.grad(loss, logits, cotangent, retain_graph=probe)[0]
        second = torch.autograd.grad(loss, logits, cotangent)[0] if probe else None
    counts = {_collective_name(op): n for op, n in comm.get_comm_counts().items()}
    answer = {"rank": rank, "loss": _numpy(loss.full_tensor()),
              "loss_dtype": str(loss.dtype).removeprefix("torch."),
              "loss_placements": [str(p) for p in loss.placements],
              "gradient": _local(gradient, logits), "gradient_dtype": str(gradient.dtype).removeprefix("torch."),
              "collectives": counts, "bytes": comm.bytes}
    if second is not None:
        answer.update(second=_local(second, logits), logits_after=_numpy(logits.to_local()),
                      labels_after=_numpy(labels.to_local() if labels_sharded else labels))
    return answer


def _local(gradient, logits) -> np.ndarray:
    """This rank's shard of a gradient, placed as the logits are (whatever propagation chose)."""
    if tuple(gradient.placements) != tuple(logits.placements):
        gradient = gradient.redistribute(logits.device_mesh, logits.placements)
    return _numpy(gradient.to_local())


def _shard(array: np.ndarray, axis: int, mesh, rank: int, dtype, device):
    """This rank's shard of a global array as a DTensor sharded on axis: no communication."""
    import torch
    from torch.distributed.tensor import DTensor, Shard

    local = layouts.split_axis(array, axis, mesh.size())[rank]
    tensor = torch.from_numpy(np.ascontiguousarray(local)).to(device=device, dtype=dtype)
    full = torch.empty(array.shape, dtype=dtype, device="meta")  # its shape and stride, for uneven shards
    return DTensor.from_local(tensor, mesh, [Shard(axis)], run_check=False, shape=full.shape, stride=full.stride())


def _replicated(tensor, mesh):
    from torch.distributed.tensor import DTensor, Replicate

    return DTensor.from_local(tensor, mesh, [Replicate()], run_check=False)


def _cotangent(cotangent: np.ndarray | None, loss, mesh, rank: int, dtype, device):
    """The backward's cotangent as a DTensor placed like the loss (ones: the summed loss)."""
    import torch
    from torch.distributed.tensor import Shard

    values = np.ones(tuple(loss.shape)) if cotangent is None else np.broadcast_to(cotangent, tuple(loss.shape))
    placement = loss.placements[0]
    if isinstance(placement, Shard):
        return _shard(np.asarray(values), placement.dim, mesh, rank, dtype, device)
    tensor = torch.from_numpy(np.array(values, dtype=np.float64)).to(device=device, dtype=dtype)
    return _replicated(tensor, mesh)  # a replicated loss (a partial one is never handed to backward)


def _collective_name(op: Any) -> str:
    """c10d_functional.all_reduce -> all_reduce."""
    return str(getattr(op, "__name__", op)).split(".")[-1]


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()
