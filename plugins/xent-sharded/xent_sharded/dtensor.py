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

from typing import Any, Mapping

import numpy as np

from conformance.adapters.api import Capability, Unavailable
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import RankPoolAdapter, taken_options

try:
    import torch  # noqa: F401 - the ranks import it; absent, the suite counts the checks as not installed
except ImportError as exc:
    raise Unavailable(f"not installed ({exc})") from None

from conformance.sharded import rank_pool, torch_dtensor

OP = "sparse_softmax_cross_entropy"
OPTIONS = ("ignore_index", "weight", "label_smoothing")


class DTensorAdapter(RankPoolAdapter):
    framework = "torch-dtensor"
    packages = ("torch",)
    layouts = ("vocab", "batch")
    capabilities = {OP: Capability("on the ranks: conformance.sharded.torch_dtensor", options=set(OPTIONS),
                                   dtypes=("float32", "float64"),
                                   layouts=layouts)}

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        """The case's options as F.cross_entropy takes them (the class axis is moved, not passed)."""
        return taken_options(options, OPTIONS)

    def submit(self, op: str, logits: np.ndarray, labels: np.ndarray, options: dict, dtype: str, layout: Layout,
               mode: str, cotangent: np.ndarray | None, probe: bool, pool: rank_pool.RankPool) -> dict:
        job = torch_dtensor.payload(np.moveaxis(logits, -1, 1), labels, layout, dtype, options, cotangent, probe)
        answer = torch_dtensor.call(pool, job, self.job_timeout_s)
        for name in ("gradient", "second", "logits_after"):  # PyTorch's classes second, back to last
            if name in answer:
                answer[name] = np.moveaxis(answer[name], 1, -1)
        return answer
