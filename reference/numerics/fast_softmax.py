"""The fast tier of the softmax cross-entropies: plain float64, vectorised, chunked by rows and
threaded, with a proven error bound.

Every result here is within fast_tier_ulps(V) units of float64 rounding (u = 2**-53)
times the op's conditioning scale (the scale the checks' tolerances use):

- d = z - m (m the row's maximum) has relative error <= u, and e = exp(d) relative error
  <= u (|d| + 2) (NumPy's float64 exp is within 1 ulp, plus d's error carried through exp).
- rest = sum of e over every class but the first maximum is summed pairwise by NumPy:
  relative error <= (16 + log2 V) u, and sum_j p_j |d_j| <= log V (it is at most the entropy
  of the softmax), so the exponent errors add at most u log V to log1p(rest).
- the loss (m - z_label) + log1p(rest) adds three roundings, each at most u times a term the
  scale already counts (|loss|, 2 |m - z_label|, logsumexp(z - m) + 1, log2 V).
- a gradient element e_j / s - [j = label] carries e_j's and s's relative errors on p_j and one
  rounding of the difference: at most (24 + log2 V) u p_j (|d_j| + 1) + u, within the scale
  p_j (2 |d_j| + lse + 1) + [j = label].

Hence the bound 2 (24 + log2 V) u scale + FAST_TIER_ABS, which the oracle test holds each
result to; the absolute part is the float64 subnormal range, where exp(d) < 2**-1022 keeps
fewer bits than u promises (two roundings there, of at most 2**-1075 each). Rows
whose maximum is not finite (all -inf, or a +inf or NaN logit) give NaN, as in the
double-double tier.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

U = 2.0 ** -53
FAST_TIER_ABS = 2.0 ** -1074
BLOCK_ELEMENTS = 1 << 16  # a block of rows whose float64 temporaries stay in a core's cache


def fast_tier_ulps(classes: int) -> float:
    """The fast tier's error bound, in units of u times the conditioning scale."""
    return 2.0 * (24.0 + np.log2(max(classes, 2)))


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _blocks(rows: int, classes: int) -> list[slice]:
    step = max(1, BLOCK_ELEMENTS // max(classes, 1))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def _each_block(rows: int, classes: int, work) -> None:
    """work(rows slice) over blocks of rows, on threads (NumPy releases the GIL in its loops)."""
    blocks = _blocks(rows, classes)
    if len(blocks) < 4 or _threads() == 1:
        for block in blocks:
            work(block)
        return
    with ThreadPoolExecutor(_threads()) as pool:
        for _ in pool.map(work, blocks):
            pass


def _row_parts(z: np.ndarray, out=None):
    """(e = exp(z - m) with the first maximum's e set to 0, m, rest = sum of e, index of the
    first maximum) of a [rows, V] block whose logits are all finite; e is computed in float64
    into out when given (the logits may be float32: widening them is exact)."""
    index = np.arange(z.shape[0])
    top = np.argmax(z, axis=1)
    m = z[index, top].astype(np.float64)
    e = np.empty(z.shape, np.float64) if out is None else out
    np.copyto(e, z)  # widened first, then subtracted in place: the same values, a third faster than mixed dtypes
    np.subtract(e, m[:, None], out=e)
    np.exp(e, out=e)
    e[index, top] = 0.0
    return e, m, e.sum(axis=1), top


def _by_rows(logits, labels, axis: int, kernel, exact, dense_labels: bool, per_class) -> np.ndarray:
    """kernel(z, labels) on [rows, V] blocks of the logits (class axis last), in threads;
    rows holding a non-finite logit go to exact(z, labels, -1), the double-double tier,
    which owns the conventions of infinities and NaN. Labels are [rows] integers, or [rows, V]
    (dense_labels); the result is one number per row, or per class (per_class). A tuple
    per_class asks for several results at once (kernel and exact return one each)."""
    several = isinstance(per_class, tuple)
    shapes = per_class if several else (per_class,)
    z = np.asarray(logits)
    moved_shape = np.moveaxis(z, axis, -1).shape
    rows = _as_rows(z, axis)
    if dense_labels:
        y = _as_rows(np.broadcast_to(np.asarray(labels, np.float64), z.shape), axis)
    else:
        y = np.asarray(labels, np.int64).reshape(-1)
    outs = [np.empty(rows.shape if each else rows.shape[:1], np.float64) for each in shapes]
    # a gradient is computed in place in its result (the last per-class one, as kernels take one)
    inplace = next((i for i in reversed(range(len(shapes))) if shapes[i]), None)

    def work(block):
        z_block = rows[block]
        finite = np.isfinite(z_block).all(axis=1)
        if finite.all():  # the usual case
            target = None if inplace is None else outs[inplace][block]
            results = kernel(z_block, y[block], target)
            for out, result in zip(outs, results if several else (results,)):
                if result is not target:
                    out[block] = result
            return
        results = kernel(z_block[finite], y[block][finite], None)
        exacts = exact(np.asarray(z_block[~finite], np.float64), y[block][~finite], -1)
        for out, result, exact_result in zip(outs, *(r if several else (r,) for r in (results, exacts))):
            out[block][finite] = result
            out[block][~finite] = exact_result

    _each_block(*rows.shape, work)
    shaped = [out.reshape(moved_shape[:-1]) if out.ndim == 1 else np.moveaxis(out.reshape(moved_shape), -1, axis)
              for out in outs]
    return tuple(shaped) if several else shaped[0]


def _as_rows(array: np.ndarray, axis: int) -> np.ndarray:
    """The class axis last, flattened to [rows, V]."""
    moved = np.moveaxis(array, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def _sparse_loss(z, labels, out=None):
    """logsumexp(z) - z[label] = (m - z[label]) + log1p(rest)."""
    _, m, rest, _ = _row_parts(z)
    return (m - z[np.arange(z.shape[0]), labels].astype(np.float64)) + np.log1p(rest)


def _sparse_grad(z, labels, out=None):
    """softmax(z) - onehot(label); at the first maximum, softmax - 1 = -rest / (1 + rest)."""
    e, _, rest, top = _row_parts(z, out)
    return _sparse_grad_of_parts(e, rest, top, labels)


def _sparse_loss_and_grad(z, labels, out=None):
    """Both from one exponential pass: the loss of _sparse_loss and the gradient of _sparse_grad
    (the same operations on the same values, so the same bits)."""
    e, m, rest, top = _row_parts(z, out)
    loss = (m - z[np.arange(z.shape[0]), labels].astype(np.float64)) + np.log1p(rest)
    return loss, _sparse_grad_of_parts(e, rest, top, labels)


def _sparse_grad_of_parts(e, rest, top, labels):
    index = np.arange(e.shape[0])
    s = 1.0 + rest
    grad = np.divide(e, s[:, None], out=e)
    grad[index, top] = 1.0 / s
    grad[index, labels] = np.where(labels == top, -rest / s, grad[index, labels] - 1.0)
    return grad


def _dense_loss(z, y, out=None):
    """sum_c y_c (lse - z_c) = sum_c y_c (m - z_c) + sum(y) log1p(rest)."""
    _, m, rest, _ = _row_parts(z)
    return np.einsum("ij,ij->i", y, np.subtract(m[:, None], z, dtype=np.float64)) + y.sum(axis=1) * np.log1p(rest)


def _dense_grad(z, y, out=None):
    """softmax(z) sum(y) - y."""
    e, _, rest, top = _row_parts(z, out)
    e[np.arange(z.shape[0]), top] = 1.0
    grad = np.multiply(e, (y.sum(axis=1) / (1.0 + rest))[:, None], out=e)
    grad -= y
    return grad


def sparse_loss(logits, labels, axis: int, exact) -> np.ndarray:
    return _by_rows(logits, labels, axis, _sparse_loss, exact, dense_labels=False, per_class=False)


def sparse_grad(logits, labels, axis: int, exact) -> np.ndarray:
    return _by_rows(logits, labels, axis, _sparse_grad, exact, dense_labels=False, per_class=True)


def sparse_loss_and_grad(logits, labels, axis: int, exact) -> tuple[np.ndarray, np.ndarray]:
    """(sparse_loss, sparse_grad) from one pass over the logits; exact returns both too."""
    return _by_rows(logits, labels, axis, _sparse_loss_and_grad, exact, dense_labels=False, per_class=(False, True))


def dense_loss(logits, labels, axis: int, exact) -> np.ndarray:
    return _by_rows(logits, labels, axis, _dense_loss, exact, dense_labels=True, per_class=False)


def dense_grad(logits, labels, axis: int, exact) -> np.ndarray:
    return _by_rows(logits, labels, axis, _dense_grad, exact, dense_labels=True, per_class=True)
