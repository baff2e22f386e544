"""Rank side of the example's sharded cross-entropy: what a team writes for tensor- and
data-parallel training, a softmax cross-entropy on logits split across torch.distributed ranks.

Under a vocabulary split each rank holds the columns [start, stop) of every row and all the
labels; the loss of a row is assembled from three all-reduces: the row's maximum (on detached
values: it only shifts), the sum of exponentials and the target's shifted logit. Every rank
then holds the same loss, so the backward of those sums is the identity: each rank's loss is
the whole loss, and its gradient with respect to the rank's own columns needs only their part
of the sum (an all-reduce in the backward as well, as torch.distributed.nn.functional's does,
would multiply every gradient by the number of ranks).

Under a batch or sequence split each rank holds its tokens with the whole vocabulary; a sum or
a mean is taken over every rank's tokens (the mean: the global sum of losses over the global
count of valid targets), and every rank returns it.

Options as PyTorch's F.cross_entropy takes them: reduction (none, sum, mean), ignore_index
(cost nothing, out of the mean's count), label_smoothing (eps spread over the whole
vocabulary: (1 - eps) nll + eps mean_j(-log p_j)). A label outside [0, V) that is not
ignore_index has no loss (NaN). bfloat16 and float16 logits are computed in float32 (the
collectives carry float32) and the loss is rounded to their dtype once, at the end.

XENT_EXAMPLE_FAULT plants a known bug, to see the suite catch it:
- "local-vocab-smoothing": smoothing spreads eps over the rank's own columns, eps / V_local and
  the mean of the rank's log-probabilities only (Megatron-LM #7464): wrong loss and gradient
  at more than one rank, and a different loss on each rank;
- "per-rank-mean": under a batch or sequence split each rank divides by its own count of
  valid targets and the ranks average their means (pytorch #185167): wrong where the counts
  differ, NaN where a rank holds none.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from conformance.sharded import local_shards

HALF_DTYPES = (torch.bfloat16, torch.float16)


def _fault() -> str:
    return os.environ.get("XENT_EXAMPLE_FAULT", "")


def sharded_cross_entropy(job: dict) -> dict:
    """The pool's entry point: one forward and backward of the loss on this rank's shard."""
    return local_shards.forward_backward(job, cross_entropy)


class _SumAcrossRanks(torch.autograd.Function):
    """The sum of a value over the ranks; its backward is the identity (see the module)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, group) -> torch.Tensor:
        total = value.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def _sum_across(value: torch.Tensor, shard: local_shards.Shard) -> torch.Tensor:
    return _SumAcrossRanks.apply(value, shard.group)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, shard: local_shards.Shard,
                  options: dict) -> torch.Tensor:
    """This rank's loss, as a user of the kernel receives it (see the module): logits are the
    rank's shard with the classes last. Half-precision logits are computed in float32 and
    the loss returned in their dtype."""
    internal = torch.float32 if logits.dtype in HALF_DTYPES else logits.dtype
    return _reduced(logits.to(internal), labels, shard, options).to(logits.dtype)


def _reduced(logits: torch.Tensor, labels: torch.Tensor, shard: local_shards.Shard,
             options: dict) -> torch.Tensor:
    losses, counted = _token_losses(logits, labels, shard, options)
    reduction = options.get("reduction", "none")
    if reduction == "none":
        return losses
    total = losses.sum()
    count = counted.sum()  # an integer: exact however many tokens
    if shard.axis == "vocab":  # every rank already holds every token's loss
        return total if reduction == "sum" else total / count.to(logits.dtype)
    if reduction == "sum":
        return _sum_across(total, shard)
    if _fault() == "per-rank-mean":
        return _sum_across(total / count.to(logits.dtype), shard) / shard.ranks
    dist.all_reduce(count, op=dist.ReduceOp.SUM, group=shard.group)
    return _sum_across(total, shard) / count.to(logits.dtype)


def _token_losses(logits: torch.Tensor, labels: torch.Tensor, shard: local_shards.Shard,
                  options: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's loss (0 where ignored, NaN where the label is outside the vocabulary) and
    whether it counts in a mean."""
    vocab = shard.axis == "vocab"
    start, classes = (shard.start, shard.length) if vocab else (0, logits.shape[-1])
    ignore_index = options.get("ignore_index")
    counted = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    undefined = counted & ((labels < 0) | (labels >= classes))
    counted = counted & ~undefined

    top = logits.detach().amax(dim=-1)
    if vocab:
        dist.all_reduce(top, op=dist.ReduceOp.MAX, group=shard.group)
    shifted = logits - top.unsqueeze(-1)
    sum_exp = torch.exp(shifted).sum(dim=-1)
    local_label = labels - start
    here = counted & (local_label >= 0) & (local_label < logits.shape[-1])
    picked = torch.gather(shifted, -1, torch.where(here, local_label, 0).unsqueeze(-1)).squeeze(-1)
    picked = torch.where(here, picked, torch.zeros_like(picked))
    if vocab:
        sum_exp, picked = _sum_across(sum_exp, shard), _sum_across(picked, shard)
    log_sum = torch.log(sum_exp)
    losses = log_sum - picked  # -log p(label)
    eps = float(options.get("label_smoothing") or 0.0)
    if eps:
        losses = (1 - eps) * losses + eps * (log_sum - _mean_shifted_logit(shifted, shard, classes))
    # a product, not a selection: a mean over no target (0 / 0) has an undefined gradient too
    losses = losses * counted.to(losses.dtype)
    return torch.where(undefined, torch.full_like(losses, float("nan")), losses), counted


def _mean_shifted_logit(shifted: torch.Tensor, shard: local_shards.Shard, classes: int) -> torch.Tensor:
    """The mean over the vocabulary of each row's shifted logits: mean_j(-log p_j) is
    log_sum - this."""
    local_sum = shifted.sum(dim=-1)
    if _fault() == "local-vocab-smoothing":
        return local_sum / shifted.shape[-1]
    if shard.axis == "vocab":
        local_sum = _sum_across(local_sum, shard)
    return local_sum / classes
