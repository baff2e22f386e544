"""TransformerEngine's vocab-parallel cross-entropy (framework id transformer-engine):
`transformer_engine.pytorch.cross_entropy.parallel_cross_entropy` on logits whose classes are
split across torch.distributed ranks (xent_sharded.transformer_engine_ranks runs it on each).

TransformerEngine's package loads its compiled CUDA library when imported, so it is offered
where CUDA is: on a machine without a GPU every check is not offered, with that reason, and
nothing imports it. With CUDA and the package absent, its checks are counted as not installed.

What it takes (TransformerEngine d0067d0's signature): logits [batch, sequence, V / ranks] (a
case's [N, V] is given as [N, 1, V]), targets [batch, sequence]; label_smoothing in PyTorch's
convention (eps / V on every class); ignore_index (its default -100 where a case names none);
the losses per token, or their mean over the targets not ignored (reduce_loss). Equal
vocabulary shards (each rank places its classes at rank * V_local). It returns a float32 loss
whatever the logits' dtype.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Mapping

import numpy as np

from conformance.adapters.api import Capability, NotOffered, Unavailable
from conformance.sharded import rank_pool
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import RankPoolAdapter

if importlib.util.find_spec("torch") is None:
    raise Unavailable("not installed (no module named 'torch')")
import torch  # noqa: E402 - after the check above

CUDA = torch.cuda.is_available()
if CUDA and importlib.util.find_spec("transformer_engine") is None:
    raise Unavailable("not installed (transformer-engine: pip install transformer-engine[pytorch])")

OP = "sparse_softmax_cross_entropy"
RANK_FUNCTION = "xent_sharded.transformer_engine_ranks:parallel_cross_entropy"
ON_THE_CPU = ("TransformerEngine needs a CUDA GPU: its package loads its compiled CUDA library on import, so "
              "its parallel_cross_entropy is not offered on the CPU")


class TransformerEngineAdapter(RankPoolAdapter):
    framework = "transformer-engine"
    packages = ("transformer-engine", "torch")
    layouts = ("vocab",)
    equal_vocabulary_shards = "each rank places its classes at rank * its shard's size"
    capabilities = {OP: Capability("on the ranks: xent_sharded.transformer_engine_ranks",
                                   options={"label_smoothing", "ignore_index"},
                                   reductions=("none", "mean"), dtypes=("float32", "bfloat16", "float16"),
                                   layouts=layouts)}

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda") if CUDA else ("cpu",)  # the CPU's checks say why they are not offered

    def rank_function(self, op: str, layout: Layout, mode: str) -> str:
        return RANK_FUNCTION

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        taken: dict[str, Any] = {"reduction": options.get("reduction", "none"),
                                 "label_smoothing": float(options.get("label_smoothing") or 0.0)}
        if options.get("ignore_index") is not None:
            taken["ignore_index"] = int(options["ignore_index"])
        return taken

    def submit(self, op: str, logits: np.ndarray, labels: np.ndarray, options: dict, dtype: str, layout: Layout,
               mode: str, cotangent: np.ndarray | None, probe: bool, pool: rank_pool.RankPool) -> dict:
        if logits.ndim > 3:
            raise NotOffered(f"{self.framework} takes logits of two or three dimensions, not {logits.ndim}")
        return super().submit(op, logits, labels, options, dtype, layout, mode, cotangent, probe, pool)

    def _pool(self, ranks: int, backend: str) -> rank_pool.RankPool:
        if backend != "nccl":  # no rank is started for a computation that cannot run here
            raise NotOffered(ON_THE_CPU)
        return super()._pool(ranks, backend)
