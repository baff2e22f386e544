"""Rank side of Liger-Kernel's vocab-parallel cross-entropy (LigerVocabParallelCEFunction): each
rank of the pool calls it on its own columns of the logits with the world as the
tensor-parallel group, as Liger's LigerVocabParallelCrossEntropy module does.

Where no GPU is present the Triton kernels run under Triton's interpreter: TRITON_INTERPRET=1
must be in the rank's environment before Liger's kernels are decorated (when
liger_kernel.ops.vocab_parallel_cross_entropy is imported), so xent_kernels.triton_device,
which sets it when CUDA is absent, is imported first, and Liger only inside the loss.

The function takes [seq, batch, V_local] logits and [seq, batch] targets: 3-D logits are handed
over as they are; others are viewed as [tokens, 1, V_local] (a batch of one sequence), and the
per-token loss is given back in the labels' shape. It has no reduction: the loss is per token.
"""
from xent_kernels import triton_device  # noqa: F401 - first: it sets TRITON_INTERPRET before Triton kernels are made

from typing import Any

from conformance.sharded import local_shards

LIGER_DEFAULT_IGNORE_INDEX = -100  # the module's default: the value a user gets without naming one


def vocab_parallel_global(job: dict) -> dict:
    """Smoothing averaged over the whole vocabulary (Liger's label_smoothing_mode="global")."""
    return local_shards.forward_backward(job, lambda *args: _loss(*args, mode="global"))


def vocab_parallel_partition(job: dict) -> dict:
    """Smoothing averaged over each rank's own columns (label_smoothing_mode="partition"),
    Megatron-LM's behaviour, which Liger reproduces on purpose."""
    return local_shards.forward_backward(job, lambda *args: _loss(*args, mode="partition"))


def _loss(logits: Any, labels: Any, shard: local_shards.Shard, options: dict, mode: str) -> Any:
    from liger_kernel.ops.vocab_parallel_cross_entropy import LigerVocabParallelCEFunction

    columns = logits.shape[-1]
    x = logits if logits.ndim == 3 else logits.reshape(-1, 1, columns)
    target = labels.reshape(x.shape[:2])
    ignore_index = options.get("ignore_index")
    loss = LigerVocabParallelCEFunction.apply(
        x, target, shard.group, LIGER_DEFAULT_IGNORE_INDEX if ignore_index is None else int(ignore_index),
        float(options.get("label_smoothing") or 0.0), options["formula"], mode)
    return loss.reshape(labels.shape)
