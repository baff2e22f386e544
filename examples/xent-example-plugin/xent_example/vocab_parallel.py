"""The adapter of the example's sharded cross-entropy (framework id example-vocab-parallel):
a kernel author's own vocab-, batch- and sequence-parallel loss (vocab_parallel_ranks) checked
through torch.distributed ranks, as docs/adapters.md of xent-conformance describes.

The ranks are a RankPool per number of ranks and backend (gloo on the CPU, NCCL on CUDA),
started on first use and reused for every check. Only split inputs are checked (a call
without a layout is not offered); the expected values are the reference of the whole inputs.
The plug-in's NumPy kernel needs no torch; this adapter does (the extra `sharded`).
"""
from __future__ import annotations

from typing import Any, Mapping

from conformance.adapters.api import Capability, Unavailable
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import RankPoolAdapter

try:
    import torch  # noqa: F401 - the ranks import it; absent, the suite counts the checks as not installed
except ImportError as exc:
    raise Unavailable(f"not installed ({exc}); pip install 'xent-example-plugin[sharded]'") from None

OP = "sparse_softmax_cross_entropy"
OPTIONS = ("ignore_index", "label_smoothing")
RANK_FUNCTION = "xent_example.vocab_parallel_ranks:sharded_cross_entropy"


class VocabParallelAdapter(RankPoolAdapter):
    framework = "example-vocab-parallel"  # a plug-in's id is its own, never a built-in one
    packages = ("xent-example-plugin", "torch")
    layouts = ("vocab", "batch", "sequence")
    capabilities = {OP: Capability(
        "on the ranks: " + RANK_FUNCTION,
        variant="exact",  # label smoothing as PyTorch spreads it: eps over the whole vocabulary
        options=set(OPTIONS),
        reductions=("none", "sum", "mean"),
        dtypes=("float32", "float64", "bfloat16", "float16"),  # halves: float32 inside
        layouts=layouts,
    )}

    def rank_function(self, op: str, layout: Layout, mode: str) -> str:
        return RANK_FUNCTION

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        taken = {"reduction": options.get("reduction", "none")}
        taken.update({name: options[name] for name in OPTIONS if options.get(name) is not None})
        return taken
