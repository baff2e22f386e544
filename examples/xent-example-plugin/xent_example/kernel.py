"""The kernel: what a team would write for its own training loop, forward and backward.

Classes are on the last axis. Labels outside [0, classes) have no loss (NaN); labels equal
to `ignore_index` cost nothing and leave the mean's denominator, as in PyTorch. `z_loss`
adds s * logsumexp(z)^2 per counted row, as PaLM and Liger-Kernel do.

XENT_EXAMPLE_FAULT plants a known bug, to see the suite catch it:
- "mean-grad": the backward of a mean forgets to divide by the number of counted rows;
- "unshifted-lse": log-sum-exp without subtracting the row maximum (overflows to inf);
- "first-cotangent": the backward scales every row by the first row's cotangent (the bug
  class of Liger-Kernel PR #1298, where grad_output[0] scaled every token);
- "tangent-without-label": forward mode forgets the label's term of the directional
  derivative, sum_j p_j v_j instead of sum_j p_j v_j - v_label;
- "in-place-backward": the training step's backward stores the gradient into the logits it
  was given (Liger-Kernel #272, Unsloth #5002);
- "rescaled-second-backward": the training step's backward scales the gradient it saved in
  forward in place, so a second backward of the same forward is scaled twice (QuACK PR #209);
- "weight-first-cotangent": the fused linear backward scales the weight's gradient by the
  first token's cotangent (Liger-Kernel PR #1298, reduction "none");
- "uniform-smoothing": the head smooths labels as PyTorch does (eps / V on every class) while
  its adapter declares Megatron-LM's convention (Megatron-LM #737, #7464);
- "chunked-unchecked-labels": the chunked forward (forward_chunked) skips the bounds check of
  the labels and reads the nearest class for one outside [0, classes), a finite loss where the
  eager path refuses with NaN (the bug class of pytorch #193757: one mode accepts undefined
  input that the other refuses).

The linear head (linear_forward, linear_backward) computes logits = hidden @ weight.T + bias
in the dtype of hidden and the loss on top, as a fused LM-head kernel does in one pass, with
label smoothing in Megatron-LM's convention (the label keeps 1 - eps, each other class gets
eps / (V - 1)), which its adapter declares as the reference variant megatron_smoothing.
"""
import os

import numpy as np


def _fault():
    return os.environ.get("XENT_EXAMPLE_FAULT", "")


def _valid_rows(labels, classes, ignore_index, checked=True):
    counted = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    undefined = counted & ((labels < 0) | (labels >= classes))
    if not checked:  # the planted fault: no bounds check, so nothing is undefined
        undefined = np.zeros_like(undefined)
    return counted & ~undefined, undefined


def _logsumexp(z):
    """Per row, keeping the axis."""
    if _fault() == "unshifted-lse":
        return np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    top = np.max(z, axis=-1, keepdims=True)
    return top + np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True))


def _log_softmax(z):
    if _fault() == "unshifted-lse":
        return z - _logsumexp(z)
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _megatron_scale(eps, classes):
    """Megatron-LM's smoothing factor eps V / (V - 1) (the fault: PyTorch's eps)."""
    return eps if _fault() == "uniform-smoothing" else eps * classes / (classes - 1)


def forward(logits, labels, ignore_index=None, z_loss=0.0, smoothing=0.0, checked=True):
    """Per-row losses, in the dtype of logits; smoothing as Megatron-LM does it:
    (1 - s) nll - s mean(log_softmax), s = smoothing V / (V - 1)."""
    valid, undefined = _valid_rows(labels, logits.shape[-1], ignore_index, checked)
    safe = np.clip(np.where(valid, labels, 0), 0, logits.shape[-1] - 1)
    with np.errstate(all="ignore"):
        log_p = _log_softmax(logits)
        picked = np.take_along_axis(log_p, safe[..., None], axis=-1)[..., 0]
        if smoothing:
            s = logits.dtype.type(_megatron_scale(smoothing, logits.shape[-1]))
            picked = (1 - s) * picked + s * np.mean(log_p, axis=-1)
        if z_loss:
            lse = _logsumexp(logits)[..., 0]
            picked = picked - logits.dtype.type(z_loss) * lse * lse
        losses = np.where(valid, -picked, np.zeros_like(picked))
    return np.where(undefined, np.nan, losses).astype(logits.dtype)


CHUNK_ROWS = 2


def forward_chunked(logits, labels, ignore_index=None, z_loss=0.0, rows=CHUNK_ROWS):
    """forward over blocks of rows, as a memory-bounded kernel runs it: the same numbers."""
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    checked = _fault() != "chunked-unchecked-labels"
    if flat_labels.size == 0:
        return forward(logits, labels, ignore_index, z_loss, checked=checked)
    parts = [forward(flat_logits[i:i + rows], flat_labels[i:i + rows], ignore_index, z_loss, checked=checked)
             for i in range(0, flat_labels.size, rows)]
    return np.concatenate(parts).reshape(labels.shape)


def reduce(losses, labels, reduction, ignore_index=None):
    if reduction == "none":
        return losses
    total = np.sum(losses, dtype=losses.dtype)
    if reduction == "sum":
        return total
    counted = np.sum(labels != ignore_index) if ignore_index is not None else labels.size
    with np.errstate(all="ignore"):
        return (total / losses.dtype.type(counted)).astype(losses.dtype)


def backward(logits, labels, reduction, ignore_index=None, z_loss=0.0, cotangent=1.0, smoothing=0.0):
    """d (cotangent * reduce(forward)) / d logits: softmax(z) - onehot(label)
    (+ 2 s lse softmax(z) with a z-loss; the one-hot smoothed as forward does), per counted row."""
    valid, undefined = _valid_rows(labels, logits.shape[-1], ignore_index)
    with np.errstate(all="ignore"):
        probabilities = np.exp(_log_softmax(logits))
        onehot = np.zeros_like(logits)
        np.put_along_axis(onehot, np.where(valid, labels, 0)[..., None], 1, axis=-1)
        if smoothing:
            s = logits.dtype.type(_megatron_scale(smoothing, logits.shape[-1]))
            onehot = (1 - s) * onehot + s / logits.dtype.type(logits.shape[-1])
        grad = probabilities - onehot
        if z_loss:
            grad = grad + logits.dtype.type(2 * z_loss) * _logsumexp(logits) * probabilities
        grad = np.where(valid[..., None], grad, 0)
        grad = np.where(undefined[..., None], np.nan, grad)
        if reduction == "mean" and _fault() != "mean-grad":
            counted = np.sum(valid) if ignore_index is not None else labels.size
            grad = grad / logits.dtype.type(counted)
    cotangent = np.asarray(cotangent, logits.dtype)
    if cotangent.ndim:  # one value per row (reduction none)
        if _fault() == "first-cotangent":
            cotangent = np.full_like(cotangent, cotangent.flat[0])
        cotangent = cotangent[..., None]
    return (grad * cotangent).astype(logits.dtype)


def forward_derivative(logits, labels, direction, reduction, ignore_index=None, z_loss=0.0):
    """d reduce(forward) along direction (forward mode): per row sum_j (p_j - onehot_j) v_j
    (+ 2 s lse sum_j p_j v_j with a z-loss), reduced as the loss is."""
    direction = np.asarray(direction, logits.dtype)
    grad = backward(logits, labels, "none", ignore_index, z_loss)
    if _fault() == "tangent-without-label":
        valid, _ = _valid_rows(labels, logits.shape[-1], ignore_index)
        one_hot = np.eye(logits.shape[-1], dtype=logits.dtype)[np.where(valid, labels, 0)]
        grad = grad + np.where(valid[..., None], one_hot, 0)
    per_row = np.sum(grad * direction, axis=-1)
    return reduce(per_row.astype(logits.dtype), labels, reduction, ignore_index)


class TrainingStep:
    """Forward that computes the gradient as it goes and keeps it for backward, as fused
    kernels do (one pass over the logits), and a backward that may run more than once."""

    def __init__(self, logits, labels, reduction, ignore_index=None, z_loss=0.0):
        self.logits = logits  # the caller's array, as an autograd context saves its input
        self.losses = reduce(forward(logits, labels, ignore_index, z_loss), labels, reduction, ignore_index)
        self.saved_grad = backward(logits, labels, reduction, ignore_index, z_loss)

    def backward(self, cotangent=1.0):
        cotangent = np.asarray(cotangent, self.logits.dtype)
        if cotangent.ndim:
            cotangent = cotangent[..., None]
        if _fault() == "in-place-backward":
            np.multiply(self.saved_grad, cotangent, out=self.logits)
            return self.logits
        if _fault() == "rescaled-second-backward":
            self.saved_grad *= cotangent
            return self.saved_grad
        return (self.saved_grad * cotangent).astype(self.logits.dtype)


def linear_logits(hidden, weight, bias=None):
    logits = hidden @ weight.T
    return logits if bias is None else logits + bias


def linear_forward(hidden, weight, bias, labels, reduction, ignore_index=None, z_loss=0.0, smoothing=0.0):
    losses = forward(linear_logits(hidden, weight, bias), labels, ignore_index, z_loss, smoothing)
    return reduce(losses, labels, reduction, ignore_index)


def linear_backward(hidden, weight, bias, labels, reduction, ignore_index=None, z_loss=0.0, smoothing=0.0,
                    cotangent=1.0):
    """(d / d hidden, d / d weight, d / d bias) of cotangent * the loss: the logits' gradient G
    through the head, G @ weight, G.T @ hidden and G's column sums."""
    logits = linear_logits(hidden, weight, bias)
    grad = backward(logits, labels, reduction, ignore_index, z_loss, cotangent, smoothing)
    weight_grad = grad.T @ hidden
    if _fault() == "weight-first-cotangent" and np.ndim(cotangent):
        first = np.asarray(cotangent, hidden.dtype).flat[0]
        weight_grad = backward(logits, labels, reduction, ignore_index, z_loss, first, smoothing).T @ hidden
    return grad @ weight, weight_grad, np.sum(grad, axis=0)
