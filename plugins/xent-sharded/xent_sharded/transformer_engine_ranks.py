"""Rank side of TransformerEngine's parallel_cross_entropy, run by conformance.sharded.local_shards
on each rank of a RankPool on CUDA (xent_sharded.transformer_engine_adapter)."""
from __future__ import annotations

from typing import Any

from conformance.sharded import local_shards

DEFAULT_IGNORE_INDEX = -100  # parallel_cross_entropy's default: a user who names none gets it


def parallel_cross_entropy(job: dict) -> dict:
    """One forward and backward of TransformerEngine's loss on this rank's shard."""
    return local_shards.forward_backward(job, _loss)


def _loss(logits: Any, labels: Any, shard: local_shards.Shard, options: dict) -> Any:
    from transformer_engine.pytorch.cross_entropy import parallel_cross_entropy as te_cross_entropy

    three_d = logits if logits.ndim == 3 else logits.unsqueeze(1)  # [N, V] as [batch N, sequence 1, V]
    mean = options.get("reduction", "none") == "mean"
    loss = te_cross_entropy(three_d, labels.reshape(three_d.shape[:2]), options.get("label_smoothing", 0.0), mean,
                            shard.group if shard.ranks > 1 else None,
                            ignore_idx=options.get("ignore_index", DEFAULT_IGNORE_INDEX))
    return loss if mean else loss.reshape(labels.shape)
