"""Rank side of framework megatron-core: Megatron-core's vocab-parallel cross-entropy on this
rank's share of the classes, as a Megatron model calls it.

Megatron takes the logits as [sequence, batch, V / TP] and the targets as [sequence, batch];
a case's (N, V) logits are given as [N, 1, V] (a view of the rank's leaf tensor, so whatever
Megatron writes into its input shows in the leaf), and the per-token loss comes back as (N,).
The tensor-parallel group is the world of the RankPool (`tp_group=`); `parallel_state` is not
needed. Each rank's range of classes is Megatron's own: it derives vocab_start_index from the
size of the shard it is given (VocabUtility.vocab_range_from_per_partition_vocab_size).

Two modes:
- vocab_parallel: megatron.core.tensor_parallel.vocab_parallel_cross_entropy, label_smoothing
  passed through;
- fused: megatron.core.fusions.fused_cross_entropy.fused_vocab_parallel_cross_entropy, whose
  pieces are compiled with torch.compile (megatron.core.jit.jit_fuser; on the CPU this needs a
  C compiler). It has no label_smoothing parameter: a smoothed call passes it all the same, and
  the TypeError is what a user who asks for it gets.
"""
from __future__ import annotations

from conformance.sharded import local_shards


def vocab_parallel(job: dict) -> dict:
    return local_shards.forward_backward(job, _vocab_parallel_loss)


def fused(job: dict) -> dict:
    return local_shards.forward_backward(job, _fused_loss)


def _vocab_parallel_loss(logits, labels, shard: local_shards.Shard, options: dict):
    from megatron.core.tensor_parallel import vocab_parallel_cross_entropy

    smoothing = float(options.get("label_smoothing", 0.0))
    return _per_token(logits, labels, lambda x, t: vocab_parallel_cross_entropy(
        x, t, label_smoothing=smoothing, tp_group=shard.group))


def _fused_loss(logits, labels, shard: local_shards.Shard, options: dict):
    from megatron.core.fusions.fused_cross_entropy import fused_vocab_parallel_cross_entropy

    smoothing = {"label_smoothing": options["label_smoothing"]} if options.get("label_smoothing") else {}
    return _per_token(logits, labels, lambda x, t: fused_vocab_parallel_cross_entropy(x, t, shard.group,
                                                                                     **smoothing))


def _per_token(logits, labels, loss):
    """Megatron's [s, b, V / TP] and [s, b] from (N, V) and (N,) (more dimensions are passed as
    they are: the leading ones are Megatron's s and b), the loss back in the labels' shape."""
    if logits.ndim == 2:
        return loss(logits.unsqueeze(1), labels.unsqueeze(1)).squeeze(1)
    return loss(logits, labels)
