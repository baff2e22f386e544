"""DeepSpeed's vocabulary- and sequence-parallel cross-entropy (framework id deepspeed):
`deepspeed.sequence.cross_entropy.vocab_parallel_cross_entropy` with its "torch" backend, on
logits split across torch.distributed ranks (xent_sharded.deepspeed_ranks runs it on each rank).

- vocab layout: each rank holds its columns of the classes, named by vocab_start_index /
  vocab_end_index, the world as tp_group (uneven splits such as 4 + 3 are DeepSpeed's own);
- sequence layout: each rank holds its tokens of a (batch, sequence, classes) prediction, the
  world as sp_group, so a mean is over the valid targets of every rank.

What DeepSpeed takes, and no more: reductions none, sum and mean; ignore_index (its default
-100 where a case names none, as a user who names none gets it). It has no class weights and
no label smoothing. It computes in float32 whatever the logits' dtype and returns a float32
loss; the gradient comes back in the logits' dtype. A target outside [0, V) that is not
ignore_index raises ValueError on every rank that holds it: under a vocab layout every rank
(each holds all the targets); under a sequence layout only the rank holding it, and with a sum
or mean the other ranks then wait in the sequence all-reduce until the pool's time limit.

The "liger" backend is not offered: it runs Liger-Kernel's Triton kernel only on an accelerator
that DeepSpeed reports as Triton-capable (never its CPU accelerator), and otherwise falls back
to the "torch" backend with a warning, so on the CPU it would check the same code twice.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Mapping

from conformance.adapters.api import Capability, Unavailable
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import RankPoolAdapter

# Only the ranks import deepspeed (its import probes the accelerator): here, whether it is there.
for _package in ("torch", "deepspeed"):
    if importlib.util.find_spec(_package) is None:
        raise Unavailable(f"not installed (no module named {_package!r})")

OP = "sparse_softmax_cross_entropy"
RANK_FUNCTION = "xent_sharded.deepspeed_ranks:vocab_parallel"


class DeepSpeedAdapter(RankPoolAdapter):
    framework = "deepspeed"
    packages = ("deepspeed", "torch")
    layouts = ("vocab", "sequence")
    capabilities = {OP: Capability("on the ranks: xent_sharded.deepspeed_ranks", options={"ignore_index"},
                                   reductions=("none", "sum", "mean"),
                                   dtypes=("float32", "float64", "bfloat16", "float16"), layouts=layouts)}

    def rank_function(self, op: str, layout: Layout, mode: str) -> str:
        return RANK_FUNCTION

    def job_options(self, op: str, options: Mapping[str, Any]) -> dict:
        """reduction and ignore_index, as vocab_parallel_cross_entropy takes them."""
        taken = {"reduction": options.get("reduction", "none")}
        if options.get("ignore_index") is not None:
            taken["ignore_index"] = int(options["ignore_index"])
        return taken
