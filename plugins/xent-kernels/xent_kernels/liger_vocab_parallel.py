"""Liger-Kernel's vocab-parallel cross-entropy, LigerVocabParallelCEFunction, on logits split on
the vocabulary across torch.distributed ranks (a RankPool: gloo on the CPU, where its Triton
kernels run under Triton's interpreter, NCCL on CUDA). Each rank holds [seq, batch, V / ranks]
logits and every target; three all-reduces of one float per token make the loss (the row's
maximum, the target's logit, the sum of exponentials), and label smoothing adds a fourth.

Liger offers two label-smoothing formulas, each checked against the reference's convention
of the same name, so each is a framework id of its own:
- `liger-vp`: formula "pytorch", eps / V on every class (the reference's `exact`), as
  LigerVocabParallelCrossEntropy does by default;
- `liger-vp-megatron`: formula "megatron", eps / (V - 1) on each other class (the reference's
  `megatron_smoothing`), in two modes: `global` (smoothing averaged over the whole vocabulary)
  and `partition` (averaged over each rank's own V / ranks columns: Megatron-LM's behaviour,
  which Liger reproduces on purpose and makes the default of its drop-in
  LigerMegatronCrossEntropy; known divergence liger-vp-megatron-partition-smooths-local-vocabulary).

The loss is per token (reduction none only: the function has no other, its module refuses
one). The ranks' shares of the vocabulary must be equal: each rank places its columns at
rank * V_local, with no way to be told where they start, so an uneven split is not offered.
"""
from __future__ import annotations

from importlib import metadata, util
from typing import Any, Mapping


from conformance.adapters.api import Capability, Unavailable
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import RankPoolAdapter

if util.find_spec("liger_kernel") is None or util.find_spec("triton") is None:
    raise Unavailable("not installed (liger-kernel and triton)")

from xent_kernels import triton_device  # noqa: E402 - after the check: it imports torch

OP = "sparse_softmax_cross_entropy"
RANKS_MODULE = "xent_kernels.liger_vocab_parallel_ranks"


def _capability(variant: str, modes: tuple[str, ...]) -> Capability:
    return Capability("on the ranks: xent_kernels.liger_vocab_parallel_ranks", variant=variant,
                      options={"ignore_index", "label_smoothing"},
                      reductions=("none",), dtypes=("float32", "float64", "bfloat16", "float16"), modes=modes,
                      layouts=("vocab",))


class LigerVocabParallelAdapter(RankPoolAdapter):
    framework = "liger-vp"
    packages = ("liger-kernel", "triton", "torch")
    layouts = ("vocab",)
    equal_vocabulary_shards = "Liger places each rank's columns at rank * V_local and takes no start"
    formula = "pytorch"  # Liger's label_smoothing_formula
    capabilities = {OP: _capability("exact", ("global",))}

    # the CPU through Triton's interpreter where no GPU is seen, else CUDA only (native Triton
    # kernels take no CPU tensors)
    devices = staticmethod(triton_device.devices)

    def version(self) -> str:
        return f"{metadata.version('liger-kernel')} (triton {metadata.version('triton')}" + (
            ", interpreted)" if triton_device.INTERPRETED else ")")

    def rank_function(self, op: str, layout: Layout, mode: str) -> str:
        return f"{RANKS_MODULE}:vocab_parallel_{mode}"

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        return {"reduction": "none", "ignore_index": options.get("ignore_index"),
                "label_smoothing": float(options.get("label_smoothing") or 0.0), "formula": self.formula}


class LigerVocabParallelMegatronAdapter(LigerVocabParallelAdapter):
    framework = "liger-vp-megatron"
    packages = ("liger-kernel", "triton", "torch")
    layouts = ("vocab",)
    formula = "megatron"
    capabilities = {OP: _capability("megatron_smoothing", ("global", "partition"))}
