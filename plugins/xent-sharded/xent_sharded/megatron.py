"""Megatron-core's vocab-parallel cross-entropy on torch.distributed ranks (framework id
megatron-core): each rank holds V / TP columns of the logits and all the targets, and the loss
is assembled with all-reduces over the tensor-parallel group (xent_sharded.megatron_ranks runs
it on the ranks of a RankPool; the group is the pool's world).

Two modes:
- `vocab_parallel`: megatron.core.tensor_parallel.vocab_parallel_cross_entropy, with
  label_smoothing in Megatron's (and NeMo's) convention: the label keeps 1 - eps and each other
  class eps / (V - 1), the reference's `megatron_smoothing` variant;
- `fused`: megatron.core.fusions.fused_cross_entropy.fused_vocab_parallel_cross_entropy,
  compiled with torch.compile (a C++ compiler on the CPU). It has no label_smoothing: a call
  with it raises TypeError in that mode, which the manifest records
  (megatron-core-fused-takes-no-label-smoothing). A mode cannot be declared without one option
  (NotOffered ends the call in every mode), and leaving the smoothing out would be a wrong
  answer rather than the refusal a user meets.

What Megatron offers and what it does not:
- the loss per token only (reduction none): Megatron has no reduction and no ignore_index;
  its users multiply by a loss mask and average themselves;
- classes split on the vocabulary only, in equal shards: each rank derives its first class from
  the size of its own shard (rank * V_local), so unequal shards put the last rank's classes in
  the wrong place (V = 7 on 2 ranks, 4 + 3: the second rank takes its columns 4 to 6 for
  classes 3 to 5, so a target 3 has two logits summed, 4 and 5 the next class's logit, 6 none,
  silently). Megatron's output layer (ColumnParallelLinear) asserts that the vocabulary divides
  by the ranks, and its training pads the vocabulary to such a multiple, so an uneven split is
  not offered;
- float32 internals for every dtype (the loss comes back float32).

Only split inputs are checked here (a call without a layout is not offered); the layout of one
rank is the TP1 baseline, against the reference and against TP2 (same_as_one_rank).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Any, Mapping


from conformance.adapters.api import Capability, Unavailable
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import RankPoolAdapter


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is absent
        return False


if not _installed("megatron.core"):  # the suite counts the checks as not installed
    raise Unavailable("not installed (megatron-core: pip install 'xent-sharded[megatron]')")

OP = "sparse_softmax_cross_entropy"
RANK_FUNCTIONS = {"vocab_parallel": "xent_sharded.megatron_ranks:vocab_parallel",
                  "fused": "xent_sharded.megatron_ranks:fused"}


def _compiles() -> bool:
    """Whether torch.compile can build the fused mode's CPU kernels here (a C++ compiler); with
    CUDA, Triton builds them."""
    return bool(os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++"))


MODES = ("vocab_parallel", "fused") if _compiles() else ("vocab_parallel",)


class MegatronAdapter(RankPoolAdapter):
    framework = "megatron-core"
    packages = ("megatron-core", "torch")
    layouts = ("vocab",)
    # Megatron pads the vocabulary to a multiple of the ranks
    equal_vocabulary_shards = "each rank places its classes at rank * its shard's size"
    capabilities = {OP: Capability("on the ranks: xent_sharded.megatron_ranks", variant="megatron_smoothing",
                                   options={"label_smoothing"}, reductions=("none",),
                                   dtypes=("float32", "float64", "bfloat16", "float16"), modes=MODES,
                                   layouts=layouts)}

    def rank_function(self, op: str, layout: Layout, mode: str) -> str:
        return RANK_FUNCTIONS[mode]

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        return {"reduction": "none", "label_smoothing": float(options.get("label_smoothing") or 0.0)}
