"""The adapter of a sharded implementation whose ranks are a RankPool: the part every such
adapter shares (the pools, the modes, the assembly of a Result from the ranks' answers).

A subclass sets `framework`, `packages`, `layouts` (literals: read before import) and
`capabilities`, and names the rank-side function of each op, layout and mode:

    class MegatronAdapter(RankPoolAdapter):
        framework = "megatron-core"
        layouts = ("vocab",)
        capabilities = {...}

        def rank_function(self, op, layout, mode):
            return "xent_sharded.megatron_ranks:vocab_parallel"

        def job_options(self, op, options):
            return {"label_smoothing": options.get("label_smoothing", 0.0)}

The rank-side function takes local_shards' payload (classes last) and returns
local_shards.forward_backward's answer; an implementation with its own payload and assembly
(DTensor) overrides `submit`. A call without a layout is not offered: the computation on whole
inputs is the unsharded framework's, and a layout of one rank is this one's baseline.
"""
from __future__ import annotations

import atexit
from typing import Any, Mapping

import numpy as np

from conformance.adapters.api import (Adapter, BackwardProbe, Call, NotOffered, RankFailed, Result,
                                      results_in_modes)
from conformance.sharded import layouts, local_shards, rank_pool
from conformance.sharded.layouts import Layout

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def taken_options(options: Mapping[str, Any], names: tuple[str, ...]) -> dict:
    """The case's options a sharded call takes, as plain values a job carries: the reduction,
    and each of names that is set (a label smoothing of 0 is none; class weights a list)."""
    taken: dict[str, Any] = {"reduction": options.get("reduction", "none")}
    for name in names:
        value = options.get(name)
        if value is None or (name == "label_smoothing" and float(value) == 0.0):
            continue
        taken[name] = np.asarray(value, np.float64).tolist() if name == "weight" else value
    return taken


class RankPoolAdapter(Adapter):
    job_timeout_s = 60.0  # a rank that has not answered by then is named, and its pool starts afresh
    # why the implementation takes equal vocabulary shards only ("" : it takes uneven ones):
    # an uneven split of the classes is then not offered, with that reason, before any rank starts
    equal_vocabulary_shards = ""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, str], rank_pool.RankPool] = {}
        atexit.register(self.close)

    # --- what a subclass says --------------------------------------------------------------

    def rank_function(self, op: str, layout: Layout, mode: str) -> str:
        """ "module:function" of the rank-side function that computes op under layout and mode."""
        raise NotImplementedError

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        """The case's options as the rank-side function takes them."""
        return {"reduction": options.get("reduction", "none")}

    def submit(self, op: str, logits: np.ndarray, labels: np.ndarray, options: dict, dtype: str, layout: Layout,
               mode: str, cotangent: np.ndarray | None, probe: bool, pool: rank_pool.RankPool) -> dict:
        """Run one job on the pool: logits with the classes last. The answer as local_shards.call gives it."""
        job = local_shards.payload(logits, labels, layout, dtype, options, cotangent, probe)
        return local_shards.call(pool, self.rank_function(op, layout, mode), job, self.job_timeout_s)

    # --- the adapter's calls ---------------------------------------------------------------

    def devices(self) -> tuple[str, ...]:
        import torch

        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

    def loss(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, layout: Layout | None = None) -> Result:
        def one_mode(mode: str) -> Result:
            answer = self._answer(op, prediction, labels, options, dtype, device, layout, mode)
            whole = not answer.get("loss_split", False)
            per_rank = [np.asarray(value, np.float64) for value in answer["losses"]] if whole else None
            return Result(np.asarray(answer["loss"], np.float64), answer["loss_dtype"], device,
                          per_rank=per_rank, communication=answer.get("communication"))

        return results_in_modes(self.capabilities[op].modes, one_mode)

    def gradient(self, call: Call, layout: Layout | None = None) -> Result:
        if call.wrt != "prediction":
            raise NotOffered(f"{self.framework} differentiates the logits only")

        def one_mode(mode: str) -> Result:
            answer = self._answer(call.op, call.prediction, call.labels, call.options, call.dtype, call.device,
                                  layout, mode, cotangent=call.cotangent)
            return Result(self._class_axis_back(answer["gradient"], call.options, call.prediction.ndim),
                          answer["gradient_dtype"], call.device, communication=answer.get("communication"))

        return results_in_modes(self.capabilities[call.op].modes, one_mode)

    def grad(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, wrt: str = "prediction", cotangent: np.ndarray | None = None,
             layout: Layout | None = None) -> Result:
        return self.gradient(Call(op, prediction, labels, options, dtype, device, wrt, cotangent), layout)

    def backward_probe(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any],
                       dtype: str, device: str, cotangent: np.ndarray, layout: Layout | None = None) -> BackwardProbe:
        """One forward and two backward passes on the ranks (retain_graph), each rank's logits read
        back afterwards, gathered; in the capability's first mode."""
        mode = self.capabilities[op].modes[0]
        answer = self._answer(op, prediction, labels, options, dtype, device, layout, mode, cotangent, probe=True)
        ndim = prediction.ndim
        first = Result(self._class_axis_back(answer["gradient"], options, ndim), answer["gradient_dtype"], device, mode)
        if "second_raised" in answer:  # judged as the second backward's raise; the logits were still read back
            second = Result(None, "", device, mode, raised=RuntimeError("; ".join(answer["second_raised"])))
        else:
            second = Result(self._class_axis_back(answer["second"], options, ndim), answer["gradient_dtype"], device,
                            mode)
        return BackwardProbe(first, second, self._class_axis_back(answer["logits_after"], options, ndim),
                             np.asarray(answer["labels_after"]))

    def jvp(self, *args: Any, **kwargs: Any) -> Result:
        raise NotOffered(f"{self.framework}: forward mode through the ranks is not checked")

    def close(self) -> None:  # a world torchrun started is left by whoever joined it (torchrun_checks)
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    # --- behind them -----------------------------------------------------------------------

    def _answer(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
                device: str, layout: Layout | None, mode: str, cotangent: np.ndarray | None = None,
                probe: bool = False) -> dict:
        if layout is None:
            raise NotOffered(f"{self.framework} computes on inputs split across ranks only")
        if device == "cuda":
            import torch

            if torch.cuda.device_count() < layout.ranks:
                raise NotOffered(f"{layout.ranks} NCCL ranks need {layout.ranks} GPUs; "
                                 f"{torch.cuda.device_count()} are visible")
        axis = options.get("axis", -1) % prediction.ndim
        classes, sizes = prediction.shape[axis], layouts.shard_sizes(prediction.shape[axis], layout.ranks)
        if layout.axis == "vocab" and self.equal_vocabulary_shards and len(set(sizes)) > 1:
            raise NotOffered(f"{self.framework} takes equal vocabulary shards only ({self.equal_vocabulary_shards}): "
                             f"{classes} classes on {layout.ranks} ranks are {' + '.join(map(str, sizes))}")
        logits = np.moveaxis(np.asarray(prediction, np.float64), axis, -1)  # the classes last
        try:
            answer = self.submit(op, logits, labels, self.job_options(op, options), dtype, layout, mode,
                                 cotangent, probe, self._pool(layout.ranks, BACKENDS[device]))
        except rank_pool.RankPoolError as exc:
            raise RankFailed(str(exc)) from None
        if "raised" in answer:  # the implementation raised on the ranks: judged as a raise
            raise RuntimeError("; ".join(dict.fromkeys(answer["raised"])))
        return answer

    @staticmethod
    def _class_axis_back(values: np.ndarray, options: Mapping[str, Any], ndim: int) -> np.ndarray:
        """A gathered array with the classes last, put back on the case's class axis."""
        return np.moveaxis(np.asarray(values, np.float64), -1, options.get("axis", -1) % ndim)

    def _pool(self, ranks: int, backend: str) -> rank_pool.RankPool:
        if rank_pool.launched_by_torchrun():  # the world torchrun started: its size and backend only
            from conformance.sharded import torchrun_world

            world = torchrun_world.world_pool()
            if (ranks, backend) != (world.n, world.backend):
                raise NotOffered(f"torchrun started {world.n} {world.backend} ranks: layouts of {world.n} ranks "
                                 f"on the {'CPU' if world.backend == 'gloo' else 'GPU'} only")
            return world
        key = (ranks, backend)
        if key not in self._pools:
            self._pools[key] = rank_pool.RankPool(ranks, backend).__enter__()
        return self._pools[key]
