"""The conditioning scales of the softmax cross-entropies in the fast tier: plain float64, row
blocks on threads, each from the same exponential pass as its value.

A scale is a bound multiplier (reference/numerics/conditioning.py): the tolerance is
cond x eps x scale, so a scale needs a few correct bits, not 106. With d_j = m - z_j >= 0
(m the row's maximum), L = log1p(rest) = logsumexp(z - m) in [0, log V], p_j = exp(-d_j - L)
and t_j = 2 d_j + L + 1 (the magnitudes an lse rounds, softmax_terms in
reference/ops/softmax_scales.py), the scales are

    sparse loss:  |loss| + t_label + log2 V           sparse gradient:  p_j t_j + [j = label]
    dense loss:   |loss| + (1 + ceil(log2 V)) sum_j |y_j| t_j
    dense gradient:  p_j |sum(y)| t_j + |y_j|

Bound (u = 2**-53; NumPy's float64 exp and log1p taken within 4 ulps, kappa = 4):
- d_j = m - z_j is one rounding (relative u), 2 d_j is exact, and e_j = exp(-d_j) is off by
  u (d_j + kappa) relative.
- rest: the e_k's errors (k not the top) add at most u (1 + rest) H + 4 u rest (H, the
  softmax's entropy, is at least sum_k p_k d_k and at most log V), and the pairwise sum
  (16 + log2 V) u rest. log1p divides an error of its argument by 1 + rest, and
  rest / (1 + rest) <= L, so |L^ - L| <= u H + (24 + log2 V) u L (4 u L for log1p itself),
  at most (20 + 2 log2 V) u + 4 u L.
- t_j: |t^ - t| <= 2 d_j u + |L^ - L| + u (L + 1) + u t <= (27 + 2 log2 V) u t, as t >= 1,
  t >= 2 d_j and t >= L + 1.
- p_j = e_j (1 / (1 + rest)): (d_j + 4) u + (21 + 2 log2 V) u + 2 u = (d_j + 27 + 2 log2 V) u.
- The sparse gradient's scale: p t and the one-hot, two roundings: (d_j + 56 + 4 log2 V) u
  relative; the dense gradient's adds |sum(y)| (pairwise, (16 + log2 V) u for labels of one
  sign) and a rounding: (d_j + 74 + 5 log2 V) u. While p_j is a normal number,
  d_j <= 1022 ln 2 < 709, so both are under 2**10 u = 2**-43 for any V <= 2**31. Where
  p_j < 2**-1022, p_j^ is off by at most 2**-1074 absolute, and p_j t_j < 2**-1074 x 2**11
  (t_j < 2**11 while d_j < 746; beyond, exp(-d_j) is 0 and p_j t_j decreases with d_j):
  SCALE_ABS.
- The loss scales: the loss they are handed is within 2 (24 + log2 V) u scale of exact (the
  fast tier's own bound, reference.numerics.fast_softmax, or the double-double tier's 1 ULP);
  with t_label, (77 + 4 log2 V) u; the dense sum of |y_j| t_j adds a product and the pairwise
  sum: (95 + 5 log2 V) u. Both under 2**8 u.

So every scale here is within SCALE_REL = 2**-42 relative (with a factor of 2 to spare) plus
SCALE_ABS of the same formula evaluated exactly. What that moves: a check's bound is
ulp x ulp(expected) + cond x eps x scale + abs, so the bound moves by at most 2**-42 of
itself, and SCALE_ABS x cond x eps is 2**-936 of the smallest ulp term (ulp(expected) >=
2**-149 for float32, more for float16 and bfloat16). A verdict could flip only for an error
equal to the bound to 12 significant digits: no verdict moves materially. Labels of mixed
signs (the dense gradient's |sum(y)| cancelling) are summed as the double-double tier sums
them, in plain float64.

The same primitives (lse, p_j, t_j) give the scales of the z-loss, the soft cap and the
gradient with respect to soft labels (reference/ops/softmax_scales.py), sums of products of
non-negative terms with a few more roundings: within OTHER_SCALE_REL. lse = m + L may cancel,
but its error, u |lse| + |L^ - L| <= (26 + log2 V) u (|lse| + sum_j p_j |z_j|), is relative to
the magnitudes the z-loss scales hold (L and H = lse - sum_j p_j z_j are both at most
|lse| + sum_j p_j |z_j|). The soft cap's scales
also hold |dL/dc_j|, a value: in the fast tier it is within fast_tier_ulps(V) u of the
gradient's scale S_c, so those terms move by at most that times S_c (2**-37 of it), which is
the cap's whole scale only where tanh saturates.

tests/unit/test_reference_fast_scales.py holds every scale here to SCALE_REL against an
mpmath evaluation of its formula (the rows of the fast tier's oracle test, 1 to 32,001
classes), shows that check failing on a scale 2**-36 off or missing a term, and holds the
registry's scales to the double-double tier's on adversarial rows (common offsets 1e4 and
1e8, -inf masks, 1 to 32,001 classes) with every option.
"""
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from reference.numerics.fast_softmax import (Exact, Kernel, Targets, by_rows, dense_loss_of_parts, exp_rest,
                                             row_parts, shifted, softmax_of_parts, sparse_grad_of_parts)

SCALE_REL = 2.0 ** -42  # every scale of the fast tier, relative to its formula's exact value
OTHER_SCALE_REL = 2.0 ** -40  # the z-loss's, the soft cap's and the soft labels' gradient's
SCALE_ABS = 2.0 ** -1062  # where a probability is subnormal


def _log2(classes: int) -> float:
    return float(np.log2(max(classes, 2)))


def _roundings(classes: int) -> float:
    """summation()'s factor: ceil(log2 V) roundings of a sum of V terms."""
    return float(np.ceil(np.log2(max(classes, 1))))


def _terms_before_lse(z: np.ndarray, top: np.ndarray,
                      target: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2 d_j into target, and z - m, m): t_j waits for L, which needs the exponentials."""
    d, m = shifted(z, top)
    terms = np.multiply(d, -2.0, out=target if target is not None else np.empty(z.shape))
    return terms, d, m


def _sparse_loss_scale_of(loss: np.ndarray, gap: np.ndarray, lse: np.ndarray, classes: int) -> np.ndarray:
    return np.abs(loss) + ((2.0 * gap + lse) + 1.0) + _log2(classes)


def _sparse_loss_and_scale(z: np.ndarray, top: np.ndarray, labels: np.ndarray,
                           targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    e, m, rest = row_parts(z, top)
    gap, lse = m - z[np.arange(z.shape[0]), labels].astype(np.float64), np.log1p(rest)
    loss = gap + lse  # fast_softmax's sparse loss, the same operations
    return loss, _sparse_loss_scale_of(loss, gap, lse, z.shape[1])


def _sparse_scale(z: np.ndarray, top: np.ndarray, labels: np.ndarray, loss: np.ndarray,
                  targets: Targets) -> tuple[np.ndarray]:
    _, m, rest = row_parts(z, top)
    gap = m - z[np.arange(z.shape[0]), labels].astype(np.float64)
    return (_sparse_loss_scale_of(loss, gap, np.log1p(rest), z.shape[1]),)


def _sparse_grad_and_scale(z: np.ndarray, top: np.ndarray, labels: np.ndarray,
                           targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """softmax(z) - onehot(label), and p_j t_j + [j = label], from one exponential pass."""
    e, m = shifted(z, top, targets[0])
    terms = np.multiply(e, -2.0, out=targets[1] if targets[1] is not None else np.empty(z.shape))  # 2 d_j
    rest = exp_rest(e, top)
    terms += (np.log1p(rest) + 1.0)[:, None]
    p, s = softmax_of_parts(e, rest, top)
    scale = np.multiply(terms, p, out=terms)
    scale[np.arange(z.shape[0]), labels] += 1.0
    return sparse_grad_of_parts(p, s, rest, top, labels), scale


def _dense_terms_sum(z: np.ndarray, y: np.ndarray, m: np.ndarray, lse: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """sum_j |y_j| t_j, summed pairwise."""
    np.subtract(m[:, None], z, out=scratch)
    scratch *= 2.0
    scratch += (lse + 1.0)[:, None]
    scratch *= np.abs(y)
    return scratch.sum(axis=1)


def _dense_loss_scale_of(loss: np.ndarray, terms_sum: np.ndarray, classes: int) -> np.ndarray:
    return np.abs(loss) + terms_sum + terms_sum * _roundings(classes)


def _dense_loss_and_scale(z: np.ndarray, top: np.ndarray, y: np.ndarray,
                          targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    e, m, rest = row_parts(z, top)
    loss = dense_loss_of_parts(z, y, m, rest, e)  # fast_softmax's dense loss, the same operations
    return loss, _dense_loss_scale_of(loss, _dense_terms_sum(z, y, m, np.log1p(rest), e), z.shape[1])


def _dense_scale(z: np.ndarray, top: np.ndarray, y: np.ndarray, loss: np.ndarray,
                 targets: Targets) -> tuple[np.ndarray]:
    e, m, rest = row_parts(z, top)
    return (_dense_loss_scale_of(loss, _dense_terms_sum(z, y, m, np.log1p(rest), e), z.shape[1]),)


def _dense_grad_and_scale(z: np.ndarray, top: np.ndarray, y: np.ndarray,
                          targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """softmax(z) sum(y) - y, and p_j |sum(y)| t_j + |y_j|, from one exponential pass."""
    e, m = shifted(z, top, targets[0])
    terms = np.multiply(e, -2.0, out=targets[1] if targets[1] is not None else np.empty(z.shape))
    rest = exp_rest(e, top)
    terms += (np.log1p(rest) + 1.0)[:, None]
    e[np.arange(z.shape[0]), top] = 1.0
    total, s = y.sum(axis=1), 1.0 + rest
    terms *= e
    terms *= (np.abs(total) / s)[:, None]
    terms += np.abs(y)
    grad = np.multiply(e, (total / s)[:, None], out=e)  # fast_softmax's dense gradient, the same operations
    grad -= y
    return grad, terms


def _logsumexp(z: np.ndarray, top: np.ndarray, labels: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    _, m, rest = row_parts(z, top)
    return (m + np.log1p(rest),)


def _softmax_terms(z: np.ndarray, top: np.ndarray, labels: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    """t_j = 2 d_j + L + 1 per class."""
    terms, e, _ = _terms_before_lse(z, top, targets[0])
    terms += (np.log1p(exp_rest(e, top)) + 1.0)[:, None]
    return (terms,)


def _softmax(z: np.ndarray, top: np.ndarray, labels: np.ndarray, targets: Targets) -> tuple[np.ndarray]:
    e, _, rest = row_parts(z, top, targets[0])
    return (softmax_of_parts(e, rest, top)[0],)


def sparse_loss_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int,
                          exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """(the sparse loss, bit for bit fast_softmax.sparse_loss's, and its scale), one pass."""
    return by_rows(logits, labels, axis, _sparse_loss_and_scale, exact, dense_labels=False, per_class=(False, False))


def sparse_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, loss: npt.ArrayLike, axis: int,
                 exact: Exact) -> np.ndarray:
    """The sparse loss's scale, the loss given (one number per row)."""
    return by_rows(logits, labels, axis, _sparse_scale, exact, dense_labels=False, per_class=(False,),
                   row_inputs=(loss,))[0]


def sparse_grad_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int,
                          exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """(the sparse gradient, bit for bit fast_softmax.sparse_grad's, and its scale), one pass."""
    return by_rows(logits, labels, axis, _sparse_grad_and_scale, exact, dense_labels=False, per_class=(True, True))


def dense_loss_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int,
                         exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    return by_rows(logits, labels, axis, _dense_loss_and_scale, exact, dense_labels=True, per_class=(False, False))


def dense_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, loss: npt.ArrayLike, axis: int,
                exact: Exact) -> np.ndarray:
    return by_rows(logits, labels, axis, _dense_scale, exact, dense_labels=True, per_class=(False,),
                   row_inputs=(loss,))[0]


def dense_grad_and_scale(logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int,
                         exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    return by_rows(logits, labels, axis, _dense_grad_and_scale, exact, dense_labels=True, per_class=(True, True))


def logsumexp(logits: npt.ArrayLike, axis: int, exact: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """m + log1p(rest) per row (exact(z, -1) where a row is not the fast tier's)."""
    return _unlabelled(logits, axis, _logsumexp, exact, False)


def softmax_terms(logits: npt.ArrayLike, axis: int, exact: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """t_j = 2 (m - z_j) + logsumexp(z - m) + 1 per class."""
    return _unlabelled(logits, axis, _softmax_terms, exact, True)


def softmax(logits: npt.ArrayLike, axis: int, exact: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """p_j = e_j / (1 + rest) per class."""
    return _unlabelled(logits, axis, _softmax, exact, True)


def _unlabelled(logits: npt.ArrayLike, axis: int, kernel: Kernel, exact: Callable[[np.ndarray, int], np.ndarray],
                per_class: bool) -> np.ndarray:
    rows = int(np.prod(np.delete(np.shape(logits), axis % np.ndim(logits))))
    return by_rows(logits, np.zeros(rows, np.int64), axis, kernel, lambda z, y, ax: (exact(z, ax),),
                   dense_labels=False, per_class=(per_class,))[0]
