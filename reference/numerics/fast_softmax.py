"""The fast tier of the softmax cross-entropies: plain float64, vectorised, chunked by rows and
threaded, with a proven error bound. Its conditioning scales are in reference.numerics.fast_scales.

Every result here is within fast_tier_ulps(V) units of float64 rounding (u = 2**-53)
times the op's conditioning scale (the scale the checks' tolerances use):

- d = z - m (m the row's maximum) has relative error <= u, and e = exp(d) relative error
  <= u (|d| + 2) (NumPy's float64 exp is within 1 ulp, plus d's error carried through exp).
- rest = sum of e over every class but the first maximum is summed pairwise by NumPy:
  relative error <= (16 + log2 V) u, and sum_j p_j |d_j| <= log V (it is at most the entropy
  of the softmax), so the exponent errors add at most u log V to log1p(rest).
- the loss (m - z_label) + log1p(rest) adds three roundings, each at most u times a term the
  scale already counts (|loss|, 2 |m - z_label|, logsumexp(z - m) + 1, log2 V); the dense
  loss sum_c y_c (m - z_c) + sum(y) log1p(rest) sums its products pairwise too.
- a gradient element e_j (1 / s) - [j = label] carries e_j's and s's relative errors on p_j,
  two roundings of the product and one of the difference: at most (24 + log2 V) u p_j
  (|d_j| + 1) + u, within the scale p_j (2 |d_j| + lse + 1) + [j = label].

Hence the bound 2 (24 + log2 V) u scale + FAST_TIER_ABS, which the oracle test holds each
result to; the absolute part is the float64 subnormal range, where exp(d) < 2**-1022 keeps
fewer bits than u promises (two roundings there, of at most 2**-1075 each). Rows
holding a non-finite logit (a -inf mask, +inf, NaN), or a logit of magnitude 2**1020 or more
(none of a narrow dtype), go to the double-double tier, which owns the conventions of
infinities and NaN.

Memory: results are written into their own arrays block by block; a block of rows (about
BLOCK_ELEMENTS logits) is all the float64 scratch a thread holds, so a loss and its gradient
cost their outputs and a few blocks, whatever N.
"""
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

U = 2.0 ** -53
FAST_TIER_ABS = 2.0 ** -1074
BLOCK_ELEMENTS = 1 << 16  # a block of rows whose float64 temporaries stay in a core's cache
# The fast tier's rows: finite logits below this magnitude (every float32, bfloat16 and float16
# logit), so that no z - m nor 2 (m - z) overflows; other rows go to the double-double tier.
LIMIT = np.float64(2.0 ** 1020)  # a float64 scalar: compared with float32 maxima without casting it

# A kernel's blocks of the per-class results to write into (None where it allocates its own).
Targets = tuple[np.ndarray | None, ...]
# kernel(z, top, y, *row inputs, targets): a tuple of results, one per entry of per_class.
Kernel = Callable[..., tuple[np.ndarray, ...]]
# exact(z, y, *row inputs, axis), the double-double tier: one result, or a tuple of them.
Exact = Callable[..., np.ndarray | tuple[np.ndarray, ...]]


def fast_tier_ulps(classes: int) -> float:
    """The fast tier's error bound, in units of u times the conditioning scale."""
    return 2.0 * (24.0 + np.log2(max(classes, 2)))


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _blocks(rows: int, classes: int) -> list[slice]:
    step = max(1, BLOCK_ELEMENTS // max(classes, 1))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def _each_block(rows: int, classes: int, work: Callable[[slice], None]) -> None:
    """work(rows slice) over blocks of rows, on threads (NumPy releases the GIL in its loops)."""
    blocks = _blocks(rows, classes)
    if len(blocks) < 4 or _threads() == 1:
        for block in blocks:
            work(block)
        return
    with ThreadPoolExecutor(_threads()) as pool:
        for _ in pool.map(work, blocks):
            pass


def _as_rows(array: np.ndarray, axis: int) -> np.ndarray:
    """The class axis last, flattened to [rows, V]."""
    moved = np.moveaxis(array, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def by_rows(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int, kernel: Kernel, exact: Exact, *,
            dense_labels: bool, per_class: tuple[bool, ...], row_inputs: tuple[npt.ArrayLike, ...] = ()) -> tuple:
    """kernel(z, top, y, *row inputs, targets) on [rows, V] blocks of the logits (class axis
    last; top, each row's first maximum), in threads; rows holding a non-finite logit (or one of
    magnitude LIMIT or more) go to exact(z, y, *row inputs, -1), the double-double tier. Labels are [rows] integers, or
    [rows, V] (dense_labels); row_inputs are arrays of one number per row (the logits' shape
    without the class axis). Each result is one number per row, or per class where per_class
    says so. Both return a tuple of results; a kernel gets targets, the blocks of the
    per-class results (None for the rest), and writes into them in place where it can
    (results as large as the logits are never copied)."""
    z = np.asarray(logits)
    moved_shape = np.moveaxis(z, axis, -1).shape
    rows = _as_rows(z, axis)
    if dense_labels:
        y = _as_rows(np.broadcast_to(np.asarray(labels, np.float64), z.shape), axis)
    else:
        y = np.asarray(labels, np.int64).reshape(-1)
    extra = [np.asarray(r, np.float64).reshape(-1) for r in row_inputs]
    outs = [np.empty(rows.shape if each else rows.shape[:1], np.float64) for each in per_class]

    def work(block: slice) -> None:
        z_block = rows[block]
        top = np.argmax(z_block, axis=1)  # the first NaN where there is one
        # False at NaN, infinities and huge logits (two reductions, no temporary)
        finite = (z_block[np.arange(len(top)), top] < LIMIT) & (z_block.min(axis=1) > -LIMIT)
        if finite.all():  # the usual case
            targets = tuple(out[block] if each else None for out, each in zip(outs, per_class))
            for out, result, target in zip(outs, kernel(z_block, top, y[block], *(r[block] for r in extra),
                                                        targets), targets):
                if result is not target:
                    out[block] = result
            return
        nones = (None,) * len(outs)
        results = kernel(z_block[finite], top[finite], y[block][finite], *(r[block][finite] for r in extra), nones)
        exacts = exact(np.asarray(z_block[~finite], np.float64), y[block][~finite],
                       *(r[block][~finite] for r in extra), -1)
        exacts = exacts if isinstance(exacts, tuple) else (exacts,)
        for out, result, exact_result in zip(outs, results, exacts):
            out[block][finite] = result
            out[block][~finite] = exact_result

    _each_block(rows.shape[0], rows.shape[1], work)
    return tuple(out.reshape(moved_shape[:-1]) if not each else np.moveaxis(out.reshape(moved_shape), -1, axis)
                 for out, each in zip(outs, per_class))


def shifted(z: np.ndarray, top: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(z - m into out, float64; m) of a [rows, V] block of finite logits whose first maxima
    are at top (they may be float32: widening them is exact, so the values are the same)."""
    m = z[np.arange(z.shape[0]), top].astype(np.float64)
    d = np.empty(z.shape, np.float64) if out is None else out
    if z.dtype == np.float64:
        np.subtract(z, m[:, None], out=d)
    else:  # widened first, then subtracted in place: a third faster than mixed dtypes
        np.copyto(d, z)
        np.subtract(d, m[:, None], out=d)
    return d, m


def exp_rest(d: np.ndarray, top: np.ndarray) -> np.ndarray:
    """exp(d) in place with the first maximum's set to 0, and rest, the sum of the others."""
    np.exp(d, out=d)
    d[np.arange(d.shape[0]), top] = 0.0
    return d.sum(axis=1)


def row_parts(z: np.ndarray, top: np.ndarray,
              out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(e = exp(z - m) with the first maximum's e set to 0, m, rest = sum of e) of a [rows, V]
    block whose logits are all finite and whose first maxima are at top."""
    e, m = shifted(z, top, out)
    return e, m, exp_rest(e, top)


def _at(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return z[np.arange(z.shape[0]), labels].astype(np.float64)


def _sparse_loss(z: np.ndarray, top: np.ndarray, labels: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    """logsumexp(z) - z[label] = (m - z[label]) + log1p(rest)."""
    _, m, rest = row_parts(z, top)
    return ((m - _at(z, labels)) + np.log1p(rest),)


def _sparse_grad(z: np.ndarray, top: np.ndarray, labels: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    """softmax(z) - onehot(label); at the first maximum, softmax - 1 = -rest / (1 + rest)."""
    e, _, rest = row_parts(z, top, targets[0])
    return (sparse_grad_of_parts(*softmax_of_parts(e, rest, top), rest, top, labels),)


def _sparse_loss_and_grad(z: np.ndarray, top: np.ndarray, labels: np.ndarray,
                          targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """Both from one exponential pass: the loss of _sparse_loss and the gradient of _sparse_grad
    (the same operations on the same values, so the same bits)."""
    e, m, rest = row_parts(z, top, targets[1])
    loss = (m - _at(z, labels)) + np.log1p(rest)
    return loss, sparse_grad_of_parts(*softmax_of_parts(e, rest, top), rest, top, labels)


def softmax_of_parts(e: np.ndarray, rest: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, s): the softmax e (1 / s), in place in e, from row_parts; s = 1 + rest per row (a
    product by the rounded reciprocal, a third the time of a division: one more rounding)."""
    s = 1.0 + rest
    reciprocal = 1.0 / s
    p = np.multiply(e, reciprocal[:, None], out=e)
    p[np.arange(e.shape[0]), top] = reciprocal
    return p, s


def sparse_grad_of_parts(p: np.ndarray, s: np.ndarray, rest: np.ndarray, top: np.ndarray,
                         labels: np.ndarray) -> np.ndarray:
    """The sparse gradient, in place in p, from softmax_of_parts."""
    index = np.arange(p.shape[0])
    p[index, labels] = np.where(labels == top, -rest / s, p[index, labels] - 1.0)
    return p


def dense_loss_of_parts(z: np.ndarray, y: np.ndarray, m: np.ndarray, rest: np.ndarray,
                        scratch: np.ndarray) -> np.ndarray:
    """sum_c y_c (m - z_c) + sum(y) log1p(rest), the products summed pairwise (in scratch)."""
    np.subtract(m[:, None], z, out=scratch)
    np.multiply(scratch, y, out=scratch)
    return scratch.sum(axis=1) + y.sum(axis=1) * np.log1p(rest)


def _dense_loss(z: np.ndarray, top: np.ndarray, y: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    """sum_c y_c (lse - z_c) = sum_c y_c (m - z_c) + sum(y) log1p(rest)."""
    e, m, rest = row_parts(z, top)
    return (dense_loss_of_parts(z, y, m, rest, e),)


def _dense_grad(z: np.ndarray, top: np.ndarray, y: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    """softmax(z) sum(y) - y."""
    e, _, rest = row_parts(z, top, targets[0])
    e[np.arange(z.shape[0]), top] = 1.0
    grad = np.multiply(e, (y.sum(axis=1) / (1.0 + rest))[:, None], out=e)
    grad -= y
    return (grad,)


def sparse_loss(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int, exact: Exact) -> np.ndarray:
    return by_rows(logits, labels, axis, _sparse_loss, exact, dense_labels=False, per_class=(False,))[0]


def sparse_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int, exact: Exact) -> np.ndarray:
    return by_rows(logits, labels, axis, _sparse_grad, exact, dense_labels=False, per_class=(True,))[0]


def sparse_loss_and_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int,
                         exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """(sparse_loss, sparse_grad) from one pass over the logits; exact returns both too."""
    return by_rows(logits, labels, axis, _sparse_loss_and_grad, exact, dense_labels=False, per_class=(False, True))


def dense_loss(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int, exact: Exact) -> np.ndarray:
    return by_rows(logits, labels, axis, _dense_loss, exact, dense_labels=True, per_class=(False,))[0]


def dense_grad(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int, exact: Exact) -> np.ndarray:
    return by_rows(logits, labels, axis, _dense_grad, exact, dense_labels=True, per_class=(True,))[0]

