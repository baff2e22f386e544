"""PyTorch DTensor's cross-entropy on inputs split across torch.distributed ranks (framework id
torch-dtensor): `loss_parallel()` on logits sharded on the vocabulary, plain `F.cross_entropy`
on logits and labels sharded on the batch (conformance.sharded.torch_dtensor runs both on the
ranks). The ranks are a RankPool per number of ranks and backend (gloo on the CPU, NCCL on
CUDA), started on first use and reused for every check, closed when the process exits.

Only split inputs are checked here (a call without a layout is not offered): the computation on
whole inputs is framework torch's, and the layouts of one rank are this one's baseline. The
expected values are the reference of the whole inputs, as for every framework.
"""
from __future__ import annotations

import atexit
from typing import Any, Mapping

import numpy as np

from conformance.adapters.api import Adapter, Call, Capability, NotOffered, RankFailed, Result, Unavailable
from conformance.sharded.layouts import Layout

try:
    import torch
except ImportError as exc:  # the suite counts the checks as not installed
    raise Unavailable(f"not installed ({exc})") from None

from conformance.sharded import rank_pool, torch_dtensor

OP = "sparse_softmax_cross_entropy"
OPTIONS = ("ignore_index", "weight", "label_smoothing")
JOB_TIMEOUT_S = 60.0  # a rank that has not answered by then is named, and the pool starts afresh
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def sharded_cross_entropy(*_: Any) -> None:
    """The capability's handle: the ranks run conformance.sharded.torch_dtensor's functions."""
    raise NotImplementedError


class DTensorAdapter(Adapter):
    framework = "torch-dtensor"
    packages = ("torch",)
    layouts = ("vocab", "batch")
    capabilities = {OP: Capability(sharded_cross_entropy, options=set(OPTIONS), dtypes=("float32", "float64"),
                                   layouts=layouts)}

    def __init__(self) -> None:
        self._pools: dict[tuple[int, str], rank_pool.RankPool] = {}
        atexit.register(self.close)

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

    def loss(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, layout: Layout | None = None) -> Result:
        answer = self._run(op, prediction, labels, options, dtype, device, layout, cotangent=None)
        losses = answer["losses"]
        if any(not np.array_equal(losses[0], other, equal_nan=True) for other in losses[1:]):
            raise RuntimeError(f"the ranks returned different losses: {[np.asarray(x).tolist() for x in losses]}")
        return Result(np.asarray(losses[0], np.float64), answer["loss_dtype"], device)

    def gradient(self, call: Call, layout: Layout | None = None) -> Result:
        if call.wrt != "prediction":
            raise NotOffered(f"{self.framework} differentiates the logits only")
        answer = self._run(call.op, call.prediction, call.labels, call.options, call.dtype, call.device, layout,
                           cotangent=call.cotangent)
        axis = call.options.get("axis", -1) % call.prediction.ndim
        return Result(np.moveaxis(np.asarray(answer["gradient"], np.float64), 1, axis), answer["gradient_dtype"],
                      call.device)

    def grad(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, wrt: str = "prediction", cotangent: np.ndarray | None = None,
             layout: Layout | None = None) -> Result:
        return self.gradient(Call(op, prediction, labels, options, dtype, device, wrt, cotangent), layout)

    def jvp(self, *args: Any, **kwargs: Any) -> Result:
        raise NotOffered(f"{self.framework}: forward mode through the ranks is not checked yet")

    def backward_probe(self, *args: Any, **kwargs: Any) -> Any:
        raise NotOffered(f"{self.framework}: a training step's properties through the ranks are not checked yet")

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _run(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, layout: Layout | None, cotangent: np.ndarray | None) -> dict:
        if layout is None:
            raise NotOffered(f"{self.framework} computes on inputs split across ranks only (whole inputs: torch)")
        if device == "cuda" and torch.cuda.device_count() < layout.ranks:
            raise NotOffered(f"{layout.ranks} NCCL ranks need {layout.ranks} GPUs; "
                             f"{torch.cuda.device_count()} are visible")
        axis = options.get("axis", -1) % prediction.ndim
        logits = np.moveaxis(np.asarray(prediction, np.float64), axis, 1)  # PyTorch's classes second
        job = torch_dtensor.payload(logits, labels, layout, dtype, _call_options(options), cotangent)
        try:
            answer = torch_dtensor.call(self._pool(layout.ranks, BACKENDS[device]), job, JOB_TIMEOUT_S)
        except rank_pool.RankPoolError as exc:
            raise RankFailed(str(exc)) from None
        if "raised" in answer:  # the framework raised on the ranks: judged as a raise
            raise RuntimeError("; ".join(dict.fromkeys(answer["raised"])))
        return answer

    def _pool(self, ranks: int, backend: str) -> rank_pool.RankPool:
        key = (ranks, backend)
        if key not in self._pools:
            self._pools[key] = rank_pool.RankPool(ranks, backend).__enter__()
        return self._pools[key]


def _call_options(options: Mapping[str, Any]) -> dict:
    """The case's options as F.cross_entropy takes them (the class axis is moved, not passed)."""
    taken = {"reduction": options.get("reduction", "none")}
    for name in OPTIONS:
        value = options.get(name)
        if value is None or (name == "label_smoothing" and float(value) == 0.0):
            continue
        taken[name] = np.asarray(value, np.float64).tolist() if name == "weight" else value
    return taken
