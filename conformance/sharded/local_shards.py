"""Sharded cross-entropy that takes each rank's local tensors and a process group (Megatron-core,
DeepSpeed, Liger-Kernel's vocab-parallel loss, a kernel author's own), run on a RankPool.

The caller builds a payload (`payload(...)`): the global inputs with the classes on the last
axis, as float64 values the dtype under test holds, the layout, the options the implementation
takes, the cotangent, and whether to probe a second backward. Each rank cuts its own shard
(layouts.split_axis: the same contiguous ranges as vocab_start_index / vocab_end_index), makes
it a leaf tensor of the dtype, and hands it to the implementation's loss function:

    def loss(logits, labels, shard: Shard, options: dict) -> torch.Tensor

`shard` says which part of the global inputs the rank holds and names the group (the world).
One forward and backward runs with the collectives' bytes counted (collective_bytes); with
`probe`, a second backward of the same forward (retain_graph), and the rank's logits read back
afterwards (also where the second backward raised: a saved tensor the first one overwrote).
`call` runs a job on a pool and assembles the answer: each rank's loss, the gathered gradient,
the gathered second gradient (or each rank's raise of it) and logits, the bytes each rank sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from conformance.sharded import layouts
from conformance.sharded.layouts import Layout

TORCH_DTYPES = ("float64", "float32", "bfloat16", "float16")
# Where a c10d op's input tensors lie among its arguments (others: the first argument): the
# bytes a rank sends into the collective.
INPUT_ARGUMENT = {"allgather_": 1, "_allgather_base_": 1, "allgather_into_tensor_coalesced_": 1,
                  "reduce_scatter_": 1, "_reduce_scatter_base_": 1, "alltoall_": 1, "alltoall_base_": 1}
NOT_COLLECTIVES = ("wait_tensor", "barrier", "monitored_barrier_", "wrap_tensor_autograd")  # not sends


@dataclass(frozen=True)
class Shard:
    """What one rank holds: rank r of `ranks` holds [start, stop) of the split axis (the
    classes under a vocab layout, tokens under batch and sequence) of a global length; `group`
    is the process group of the ranks."""

    rank: int
    ranks: int
    axis: str
    start: int
    stop: int
    length: int
    group: Any


def payload(logits: np.ndarray, labels: np.ndarray, layout: Layout, dtype: str, options: Mapping | None = None,
            cotangent: np.ndarray | float | None = None, probe: bool = False) -> dict:
    """A job's payload. logits: (..., V), classes last; labels: the logits' shape without V;
    cotangent: one value per loss (reduction none) or a scalar; None: the gradient of the
    summed loss."""
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(TORCH_DTYPES)}")
    layouts.check_shape(layout, np.shape(logits), class_axis=-1, where=f"{layout.name}")
    return {"logits": np.asarray(logits, dtype=np.float64), "labels": np.asarray(labels, dtype=np.int64),
            "layout": layout.as_record(), "dtype": dtype, "options": dict(options or {}),
            "cotangent": None if cotangent is None else np.asarray(cotangent, dtype=np.float64), "probe": probe}


def loss_is_split(job: dict) -> bool:
    """Whether each rank's loss is its own tokens' (a batch or sequence split, one loss per
    token) rather than the whole loss."""
    return Layout(**job["layout"]).axis != "vocab" and job["options"].get("reduction", "none") == "none"


def forward_backward(job: dict, loss: Callable[..., Any]) -> dict:
    """Rank side: one forward and backward of `loss` on this rank's shard (see the module)."""
    import torch
    import torch.distributed as dist

    rank, layout = dist.get_rank(), Layout(**job["layout"])
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    if device == "cuda":
        torch.cuda.set_device(rank % torch.cuda.device_count())
    logits_axis = layout.axis_index(job["logits"].ndim, class_axis=-1)
    start, stop = layouts.bounds(job["logits"].shape[logits_axis], layout.ranks)[rank]
    shard = Shard(rank, layout.ranks, layout.axis, start, stop, job["logits"].shape[logits_axis], dist.group.WORLD)
    local = layouts.split_axis(job["logits"], logits_axis, layout.ranks)[rank]
    labels = layouts.split_labels(job["labels"], layout, job["logits"].ndim, class_axis=-1)[rank]
    dtype = getattr(torch, job["dtype"])
    logits = torch.from_numpy(np.ascontiguousarray(local)).to(device=device, dtype=dtype).requires_grad_()
    target = torch.from_numpy(np.ascontiguousarray(labels)).to(device)
    with collective_bytes() as sent:
        value = loss(logits, target, shard, dict(job["options"]))
        cotangent = _cotangent(job, value, layout, rank, device)
        first = torch.autograd.grad(value, logits, cotangent, retain_graph=job["probe"])[0]
        second, second_raised = None, ""
        if job["probe"]:
            try:
                second = torch.autograd.grad(value, logits, cotangent)[0]
            except RuntimeError as exc:  # the second backward's own outcome: the logits are still read back
                second_raised = f"{type(exc).__name__}: {exc}"
    answer = {"rank": rank, "loss": _numpy(value), "loss_dtype": _dtype_name(value),
              "gradient": _numpy(first), "gradient_dtype": _dtype_name(first), "bytes": sent.bytes}
    if job["probe"]:
        answer["second"] = None if second is None else _numpy(second)
        answer["second_raised"] = second_raised
        answer["logits_after"] = _numpy(logits)
        answer["labels_after"] = _numpy(target)
    return answer


def call(pool, function: str, job: dict, timeout_s: float = 120.0) -> dict:
    """Run a payload's job (function: "module:name" of a rank-side function) on the pool and
    assemble the answer; where a rank raised, `raised` with each raising rank's text. A rank
    that dies or hangs raises rank_pool.RankPoolError."""
    layout = Layout(**job["layout"])
    answers = pool.run(function, job, timeout_s)
    raised = [str(answer) for answer in answers if not isinstance(answer, dict)]
    if raised:
        return {"layout": layout.name, "raised": raised}
    ndim = job["logits"].ndim
    logits_axis = layout.axis_index(ndim, class_axis=-1)
    split = loss_is_split(job)
    losses = [answer["loss"] for answer in answers]
    labels_axis = layout.labels_axis_index(ndim, class_axis=-1)
    assembled = {
        "layout": layout.name, "losses": losses, "loss_split": split,
        "loss": layouts.gather_axis(losses, labels_axis) if split and labels_axis is not None else losses[0],
        "loss_dtype": answers[0]["loss_dtype"],
        "gradient": layouts.gather_axis([answer["gradient"] for answer in answers], logits_axis),
        "gradient_dtype": answers[0]["gradient_dtype"],
        "communication": communication(answers, job),
    }
    if job["probe"]:
        second_raised = [f"rank {answer['rank']} raised {answer['second_raised']}" for answer in answers
                         if answer["second_raised"]]
        if second_raised:  # the second backward raised: `second_raised` in place of `second`
            assembled["second_raised"] = second_raised
        else:
            assembled["second"] = layouts.gather_axis([answer["second"] for answer in answers], logits_axis)
        assembled["logits_after"] = layouts.gather_axis([answer["logits_after"] for answer in answers], logits_axis)
        after = [answer["labels_after"] for answer in answers]
        assembled["labels_after"] = after[0] if labels_axis is None else layouts.gather_axis(after, labels_axis)
    return assembled


def communication(answers: list[dict], job: dict) -> dict:
    """What the ranks' collectives carried in one forward and backward: the bytes each rank
    sent, by collective, the most any rank sent, and the floor it is read against: one float32
    per token of the rank (a vocab-parallel loss needs about three: the row's maximum, its sum
    of exponentials and its target's logit; all-gathering the logits costs V / ranks per token)."""
    tokens = int(np.prod(job["labels"].shape)) if job["labels"].ndim else 1
    layout = Layout(**job["layout"])
    if layout.axis != "vocab":
        tokens = -(-tokens // layout.ranks)
    if layout.ranks == 1:  # a collective of one rank carries nothing across ranks
        return {"bytes": {name: 0 for name in answers[0]["bytes"]}, "max_bytes_per_rank": 0, "floor_bytes": 0}
    most = max(sum(answer["bytes"].values()) for answer in answers)
    return {"bytes": answers[0]["bytes"], "max_bytes_per_rank": most, "floor_bytes": 4 * tokens}


def collective_bytes() -> Any:
    """A context manager counting the bytes this rank hands to torch.distributed's collectives
    (c10d and functional collectives, as the dispatcher sees them), by collective, in `.bytes`:
    PyTorch's CommDebugMode (which also counts them, `get_comm_counts()`, and lets DTensor turn
    its ops into collectives on plain tensors first), extended by the bytes."""
    from torch.distributed.tensor.debug import CommDebugMode

    class CollectiveBytes(CommDebugMode):
        def __init__(self) -> None:
            super().__init__()
            self.bytes: dict[str, int] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = super().__torch_dispatch__(func, types, args, kwargs)
            if out is not NotImplemented:
                _count(self.bytes, func, args)
            return out

    return CollectiveBytes()


def _count(counts: dict[str, int], func: Any, args: tuple) -> None:
    namespace = getattr(func, "namespace", "")
    if namespace not in ("c10d", "_c10d_functional", "c10d_functional"):
        return
    name = func._schema.name.split("::")[-1]
    if name in NOT_COLLECTIVES:
        return
    index = INPUT_ARGUMENT.get(name, 0)
    sent = _nbytes(args[index]) if index < len(args) else 0
    key = name.strip("_")
    counts[key] = counts.get(key, 0) + sent


def _nbytes(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(item) for item in value)
    return 0


def _cotangent(job: dict, value, layout: Layout, rank: int, device: str):
    """The backward's cotangent for this rank's loss: ones (the summed loss), the seeded scalar,
    or the seeded per-loss values (this rank's share where each rank holds its tokens' losses)."""
    import torch

    given = job["cotangent"]
    if given is None:
        return torch.ones_like(value)
    if given.ndim and loss_is_split(job):
        axis = layout.labels_axis_index(job["logits"].ndim, class_axis=-1)
        assert axis is not None, "a split loss is split with the labels"
        given = layouts.split_axis(given, axis, layout.ranks)[rank]
    values = np.broadcast_to(given, tuple(value.shape))
    return torch.from_numpy(np.array(values, dtype=np.float64)).to(device=device, dtype=value.dtype)


def _dtype_name(tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()
