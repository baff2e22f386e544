"""Double-double arithmetic on NumPy arrays: a value is hi + lo with |lo| <= ulp(hi) / 2.

Why the reference needs it: a loss is several roundings long in float64 (exp, log1p, a
product, the sum of two terms), and each adds up to an ULP, so plain float64 lands 2 to 6
ULPs from the exact value. Carried in double-double (about 2**-100 relative) and rounded once
at the end (`hi` of a normalised pair is hi + lo rounded to nearest), a result is within
half an ULP of the exact value plus about 2**-45 ULP: within 1 ULP, as the oracle tests
(tests/unit/test_reference_*_vs_oracle.py) check against mpmath.

Building blocks: Knuth's two-sum and Dekker's split and product (NumPy has no fused
multiply-add) are exact; add, mul and div follow the accurate variants of Hida, Li and
Bailey's QD library. Elementary functions:
- exp: x = k ln2 + (j / 64) ln2 + r with ln2 in three parts, a table of 2**(j/64) and a
  Taylor series of expm1(r), |r| <= ln2 / 128, kept in expm1 form so that exp(x) - 1 stays
  relatively accurate near 0 (subnormal arguments included). The table is built at import
  by a slower, table-free method (scaling by 2**-9 and squaring nine times).
- log1p: one Newton step from libm's log1p, y + (1 + u) exp(-y) - 1, which squares libm's
  relative error (2**-52 becomes about 2**-104).
- log of a float: frexp, then log1p of the exact m - 1.

Limits, none of which a loss reaches: operands past 2**996 (Dekker's split overflows) and
results that overflow keep the plain float64 value, with lo = 0; below 2**-969 lo is itself
subnormal and holds fewer bits, so such values are accurate to the subnormal spacing, 2**-1074
(value_scaled rounds a result formed at a scale once instead). Infinities and NaN propagate
in hi with lo = 0.
"""
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

LN2 = (0.6931471805599453, 2.3190468138462996e-17, 5.707708438416212e-34)  # ln 2 = sum, to ~2**-160
_SPLITTER = 134217729.0  # 2**27 + 1


class DD(NamedTuple):
    hi: np.ndarray
    lo: np.ndarray


def of(x: npt.ArrayLike) -> DD:
    """A float64 array as a double-double (exactly)."""
    x = np.asarray(x, np.float64)
    return DD(x, np.zeros_like(x))


def _settle(a: DD, plain: np.ndarray) -> DD:
    """a where it is finite; where not (inf or NaN met, a split overflowed), plain float64."""
    ok = np.isfinite(a.hi) & np.isfinite(a.lo)
    return DD(np.where(ok, a.hi, plain), np.where(ok, a.lo, 0.0))


def two_sum(a: np.ndarray | float, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e = a + b exactly, s = fl(a + b)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _fast_two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """two_sum when |a| >= |b| (or a = 0)."""
    s = a + b
    return s, b - (s - a)


def _split(a: np.ndarray | float) -> tuple[np.ndarray | float, np.ndarray | float]:
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a: np.ndarray, b: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """p + e = a * b exactly (barring underflow), p = fl(a * b)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@np.errstate(all="ignore")
def add(a: DD, b: DD) -> DD:
    s, e = two_sum(a.hi, b.hi)
    t, f = two_sum(a.lo, b.lo)
    s, e = _fast_two_sum(s, e + t)
    s, e = _fast_two_sum(s, e + f)
    return _settle(DD(s, e), a.hi + b.hi)


def neg(a: DD) -> DD:
    return DD(-a.hi, -a.lo)


def sub(a: DD, b: DD) -> DD:
    return add(a, neg(b))


@np.errstate(all="ignore")
def mul(a: DD, b: DD) -> DD:
    p, e = two_prod(a.hi, b.hi)
    e = e + (a.hi * b.lo + a.lo * b.hi)
    return _settle(DD(*_fast_two_sum(p, e)), a.hi * b.hi)


@np.errstate(all="ignore")
def mul_float(a: DD, b: np.ndarray) -> DD:
    """a * b for a float64 array b."""
    p, e = two_prod(a.hi, b)
    return _settle(DD(*_fast_two_sum(p, e + a.lo * b)), a.hi * b)


@np.errstate(all="ignore")
def div(a: DD, b: DD) -> DD:
    q1 = a.hi / b.hi
    r = sub(a, mul_float(b, q1))
    q2 = r.hi / b.hi
    r = sub(r, mul_float(b, q2))
    q3 = r.hi / b.hi
    q = add(DD(*_fast_two_sum(q1, q2)), of(q3))
    return _settle(q, q1)


_TINIEST = 2.0**-1074


@np.errstate(all="ignore")
def value_scaled(a: DD, k: np.ndarray | int) -> np.ndarray:
    """fl(a * 2**k) rounded once, also where the result is subnormal.

    Scaling hi alone would round twice there (hi was rounded to 53 bits, then to the coarser
    subnormal spacing): where hi falls exactly halfway, lo says which way.
    """
    r = np.ldexp(a.hi, k)
    # What r misses of a, in units of the subnormal spacing: hi's part is exact and a multiple
    # of ulp(hi), so only at exactly half a step can lo decide (ldexp rounded that tie to even).
    missed = np.ldexp(a.hi - np.ldexp(r, -k), k + 1074)
    beyond = (np.abs(missed) > 0.5) | ((np.abs(missed) == 0.5) & (a.lo * missed > 0))
    step = np.where(beyond, np.sign(missed) * _TINIEST, 0.0)
    return np.where(np.isfinite(r) & (np.abs(r) < 2.0**-1021), r + step, r)


@np.errstate(all="ignore")
def scale(a: DD, k: np.ndarray | int) -> DD:
    """a * 2**k for integer k (exact unless the result over- or underflows)."""
    return _settle(DD(np.ldexp(a.hi, k), np.ldexp(a.lo, k)), np.ldexp(a.hi, k))


def where(condition: np.ndarray, a: DD, b: DD) -> DD:
    return DD(np.where(condition, a.hi, b.hi), np.where(condition, a.lo, b.lo))


def take_along_axis(a: DD, index: np.ndarray, axis: int) -> DD:
    return DD(np.take_along_axis(a.hi, index, axis), np.take_along_axis(a.lo, index, axis))


def put_along_axis(a: DD, index: np.ndarray, values: DD, axis: int) -> DD:
    """A copy of a with values put at index along axis."""
    hi, lo = a.hi.copy(), a.lo.copy()
    np.put_along_axis(hi, index, values.hi, axis=axis)
    np.put_along_axis(lo, index, values.lo, axis=axis)
    return DD(hi, lo)


def expand_dims(a: DD, axis: int) -> DD:
    return DD(np.expand_dims(a.hi, axis), np.expand_dims(a.lo, axis))


def sum(a: DD, axis: int = -1) -> DD:  # noqa: A001 - the double-double sum, as np.sum is the float64 one
    """Pairwise sum along axis, every addition in double-double (about 2**-100 relative for
    terms of one sign)."""
    hi, lo = np.moveaxis(a.hi, axis, -1), np.moveaxis(a.lo, axis, -1)
    if hi.shape[-1] == 0:
        return of(np.zeros(hi.shape[:-1]))
    while hi.shape[-1] > 1:
        if hi.shape[-1] % 2:
            pad = np.zeros(hi.shape[:-1] + (1,))
            hi, lo = np.concatenate([hi, pad], axis=-1), np.concatenate([lo, pad], axis=-1)
        hi, lo = add(DD(hi[..., 0::2], lo[..., 0::2]), DD(hi[..., 1::2], lo[..., 1::2]))
    return DD(hi[..., 0], lo[..., 0])


def _add(a: DD, b: DD) -> DD:
    """add without the checks for infinities and NaN, for the inner loops of exp."""
    s, e = two_sum(a.hi, b.hi)
    t, f = two_sum(a.lo, b.lo)
    s, e = _fast_two_sum(s, e + t)
    return DD(*_fast_two_sum(s, e + f))


def _mul(a: DD, b: DD) -> DD:
    """mul without the checks for infinities and NaN."""
    p, e = two_prod(a.hi, b.hi)
    return DD(*_fast_two_sum(p, e + (a.hi * b.lo + a.lo * b.hi)))


def _reduce(x: DD, k: np.ndarray) -> DD:
    """x - k ln2 with ln2 in three parts (k ln2's first two parts exact): r, exp(x) = 2**k exp(r)."""
    r = _add(x, neg(DD(*two_prod(k, LN2[0]))))
    r = _add(r, neg(DD(*two_prod(k, LN2[1]))))
    return _add(r, of(-k * LN2[2]))


_INVERSE_FACTORIAL = [div(of(1.0), of(float(np.prod(np.arange(1.0, n + 1))))) for n in range(13)]  # 1/n!


@np.errstate(all="ignore")
def _exp_parts_by_squaring(x: DD) -> tuple[np.ndarray, DD]:
    """(k, m), exp(x) = 2**k (1 + m): |r| <= ln2 / 2 scaled by 2**-9, Taylor to degree 9,
    nine squarings in expm1 form (e -> e (e + 2)). Slow and simple; builds the table below."""
    k = np.rint(x.hi / LN2[0])
    s = scale(_reduce(x, k), -9)
    m = _INVERSE_FACTORIAL[9]
    for c in reversed(_INVERSE_FACTORIAL[1:9]):
        m = add(mul(m, s), c)
    m = mul(m, s)
    for _ in range(9):
        m = mul(m, add(m, of(2.0)))
    return k.astype(np.int64), m


def parts_to_exp(k: np.ndarray, m: DD) -> DD:
    """2**k (1 + m), the value exp_parts describes."""
    return scale(add(of(1.0), m), k)


def parts_to_expm1(k: np.ndarray, m: DD) -> DD:
    """2**k (1 + m) - 1, without a cancelling 1 where k = 0 (then it is m itself)."""
    return where(k == 0, m, sub(parts_to_exp(k, m), of(1.0)))


_STEPS = 64  # exp(x) = 2**k 2**(j/64) exp(r), |r| <= ln2 / 128, -32 <= j < 32
_j = np.arange(-_STEPS // 2, _STEPS // 2, dtype=np.float64)
_k_j, _m_j = _exp_parts_by_squaring(add(DD(*two_prod(_j, LN2[0] / _STEPS)), of(_j * (LN2[1] / _STEPS))))
_TABLE_MINUS_1 = parts_to_expm1(_k_j, _m_j)  # 2**(j/64) - 1
_TABLE = add(_TABLE_MINUS_1, of(1.0))  # 2**(j/64), at index j + 32
# From 1/7! on, the series is summed in plain float64: r**7 / 7! is below 2**-64 r, so its
# rounding is below 2**-110 of the result.
_FLOAT_TAIL = [float(c.hi) for c in _INVERSE_FACTORIAL[7:]]


@np.errstate(all="ignore")
def exp_parts(x: DD) -> tuple[np.ndarray, DD]:
    """(k, m) with exp(x) = 2**k (1 + m): k an integer array, m a double-double.

    x = (64 k + j) ln2 / 64 + r, |r| <= ln2 / 128, -32 <= j < 32: exp(x) = 2**k 2**(j/64)
    (1 + p(r)) with p the Taylor series of expm1 to degree 12 (in double-double to degree 6).
    For |x| < ln2 / 2, k = 0 and m = (2**(j/64) - 1) + 2**(j/64) p(r) is exp(x) - 1 with
    nothing cancelled but a factor 2 at most: relatively accurate near 0.
    -inf gives a large negative k (exp = 0), +inf a large positive one (exp = inf).
    """
    clipped = np.clip(x.hi, -1100.0, 710.0)  # beyond, exp is 0 or inf anyway; NaN stays NaN
    x = DD(clipped, np.where(clipped == x.hi, x.lo, 0.0))
    n = np.rint(np.nan_to_num(clipped) * (_STEPS / LN2[0]))
    j = (np.mod(n + _STEPS // 2, _STEPS) - _STEPS // 2).astype(np.int64)
    r = _reduce(x, n / _STEPS)
    tail = np.full(r.hi.shape, _FLOAT_TAIL[-1])
    for c in reversed(_FLOAT_TAIL[:-1]):
        tail = tail * r.hi + c
    q = _add(DD(*two_prod(r.hi, tail)), _INVERSE_FACTORIAL[6])  # Horner: 1/6! + r (1/7! + ...)
    for c in reversed(_INVERSE_FACTORIAL[1:6]):
        q = _add(_mul(q, r), c)
    p = _mul(q, r)
    row = j + _STEPS // 2
    m = _add(DD(_TABLE_MINUS_1.hi[row], _TABLE_MINUS_1.lo[row]), _mul(DD(_TABLE.hi[row], _TABLE.lo[row]), p))
    k = ((n - j) / _STEPS).astype(np.int64)
    return k, DD(m.hi, np.where(np.isfinite(m.hi), m.lo, 0.0))


def exp(x: DD) -> DD:
    """exp of a double-double, to about 2**-100 relative (absolute 2**-1074 when subnormal)."""
    return parts_to_exp(*exp_parts(x))


def expm1(x: DD) -> DD:
    """exp(x) - 1, relatively accurate near 0 too."""
    return parts_to_expm1(*exp_parts(x))


@np.errstate(all="ignore")
def log1p(u: DD) -> DD:
    """log(1 + u) of a double-double u >= -1: libm's value and one Newton step."""
    y0 = np.log1p(u.hi)
    k, m = exp_parts(of(-y0))
    # (1 + u) exp(-y0) - 1, in the form whose rounding is small against the result:
    # near 0 (k = 0) as u + m + u m, with no 1 that would swamp a small u; farther out
    # (|y| > ln2 / 2) as 2**k (a + a m) - 1, a = 1 + u, with no u near -1 that would cancel.
    near_zero = add(add(u, m), mul(u, m))
    a = add(of(1.0), u)
    far = sub(scale(add(a, mul(a, m)), k), of(1.0))
    return _settle(add(of(y0), where(k == 0, near_zero, far)), y0)


@np.errstate(all="ignore")
def log(p: npt.ArrayLike) -> DD:
    """log of float64 values: p = m 2**e with m - 1 exact, log1p(m - 1) + e ln2."""
    p = np.asarray(p, np.float64)
    m, e = np.frexp(p)
    near_one = (p >= 0.5) & (p <= 2.0)  # no frexp: ln2 + log1p(p/2 - 1) would cancel
    m = np.where(near_one, p, m)
    e = np.where(near_one, 0, e).astype(np.float64)
    ln2 = DD(np.float64(LN2[0]), np.float64(LN2[1]))  # type: ignore[arg-type]  # numbers act as 0-d arrays
    result = add(log1p(of(m - 1.0)), mul_float(ln2, e))
    return _settle(result, np.log(p))
