"""Double-double arithmetic on NumPy arrays: a value is hi + lo with |lo| <= ulp(hi) / 2.

Why the reference needs it: a loss is several roundings long in float64 (exp, log1p, a
product, the sum of two terms), and each adds up to an ULP, so plain float64 lands 2 to 6
ULPs from the exact value. Carried in double-double (about 2**-100 relative) and rounded once
at the end (`hi` of a normalised pair is hi + lo rounded to nearest), a result is within
half an ULP of the exact value plus about 2**-45 ULP: within 1 ULP, as tests/unit/test_oracle.py
checks against mpmath.

Building blocks: Knuth's two-sum and Dekker's split and product (NumPy has no fused
multiply-add) are exact; add, mul and div follow the accurate variants of Hida, Li and
Bailey's QD library. Elementary functions:
- exp: x = k ln2 + r with ln2 in three parts, r scaled by 2**-9, a Taylor series of expm1 to
  degree 9, then nine squarings in expm1 form (e -> e (e + 2)), which keeps exp(x) - 1
  relatively accurate near 0; arguments below 2**-30 skip the scaling so that subnormal ones
  do not underflow.
- log1p: one Newton step from libm's log1p, y + (1 + u) exp(-y) - 1, which squares libm's
  relative error (2**-52 becomes about 2**-104).
- log of a float: frexp, then log1p of the exact m - 1.

Limits, none of which a loss reaches: operands past 2**996 (Dekker's split overflows) and
results that overflow keep the plain float64 value, with lo = 0; subnormal results keep only
hi (lo underflows), so they are accurate to the subnormal spacing, 2**-1074. Infinities and
NaN propagate in hi with lo = 0.
"""
from typing import NamedTuple

import numpy as np

LN2 = (0.6931471805599453, 2.3190468138462996e-17, 5.707708438416212e-34)  # ln 2 = sum, to ~2**-160
_SPLITTER = 134217729.0  # 2**27 + 1
_SQUARINGS = 9
_SMALL = 2.0**-30  # below this exp needs neither scaling nor squaring


class DD(NamedTuple):
    hi: np.ndarray
    lo: np.ndarray


def of(x):
    """A float64 array as a double-double (exactly)."""
    x = np.asarray(x, np.float64)
    return DD(x, np.zeros_like(x))


def _settle(a, plain):
    """a where it is finite; where not (inf or NaN met, a split overflowed), plain float64."""
    ok = np.isfinite(a.hi) & np.isfinite(a.lo)
    return DD(np.where(ok, a.hi, plain), np.where(ok, a.lo, 0.0))


def two_sum(a, b):
    """s + e = a + b exactly, s = fl(a + b)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _fast_two_sum(a, b):
    """two_sum when |a| >= |b| (or a = 0)."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a, b):
    """p + e = a * b exactly (barring underflow), p = fl(a * b)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@np.errstate(all="ignore")
def add(a, b):
    s, e = two_sum(a.hi, b.hi)
    t, f = two_sum(a.lo, b.lo)
    s, e = _fast_two_sum(s, e + t)
    s, e = _fast_two_sum(s, e + f)
    return _settle(DD(s, e), a.hi + b.hi)


def neg(a):
    return DD(-a.hi, -a.lo)


def sub(a, b):
    return add(a, neg(b))


@np.errstate(all="ignore")
def mul(a, b):
    p, e = two_prod(a.hi, b.hi)
    e = e + (a.hi * b.lo + a.lo * b.hi)
    return _settle(DD(*_fast_two_sum(p, e)), a.hi * b.hi)


@np.errstate(all="ignore")
def mul_float(a, b):
    """a * b for a float64 array b."""
    p, e = two_prod(a.hi, b)
    return _settle(DD(*_fast_two_sum(p, e + a.lo * b)), a.hi * b)


@np.errstate(all="ignore")
def div(a, b):
    q1 = a.hi / b.hi
    r = sub(a, mul_float(b, q1))
    q2 = r.hi / b.hi
    r = sub(r, mul_float(b, q2))
    q3 = r.hi / b.hi
    q = add(DD(*_fast_two_sum(q1, q2)), of(q3))
    return _settle(q, q1)


_TINIEST = 2.0**-1074


@np.errstate(all="ignore")
def value_scaled(a, k):
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
def scale(a, k):
    """a * 2**k for integer k (exact unless the result over- or underflows)."""
    return _settle(DD(np.ldexp(a.hi, k), np.ldexp(a.lo, k)), np.ldexp(a.hi, k))


def where(condition, a, b):
    return DD(np.where(condition, a.hi, b.hi), np.where(condition, a.lo, b.lo))


def take_along_axis(a, index, axis):
    return DD(np.take_along_axis(a.hi, index, axis), np.take_along_axis(a.lo, index, axis))


def put_along_axis(a, index, values, axis):
    """A copy of a with values put at index along axis."""
    hi, lo = a.hi.copy(), a.lo.copy()
    np.put_along_axis(hi, index, values.hi, axis=axis)
    np.put_along_axis(lo, index, values.lo, axis=axis)
    return DD(hi, lo)


def expand_dims(a, axis):
    return DD(np.expand_dims(a.hi, axis), np.expand_dims(a.lo, axis))


def sum(a, axis=-1):  # noqa: A001 - the double-double sum, as np.sum is the float64 one
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


def _inverse_factorials(degree):
    out, factorial = [], 1.0
    for n in range(1, degree + 1):
        factorial *= n  # exact up to 22!
        out.append(div(of(1.0), of(factorial)))
    return out


_TAYLOR = _inverse_factorials(9)  # 1/1!, ..., 1/9! in double-double


@np.errstate(all="ignore")
def exp_parts(x):
    """(k, m) with exp(x) = 2**k (1 + m): k an integer array, m = expm1(r) in double-double.

    -inf gives a large negative k (exp = 0), +inf a large positive one (exp = inf).
    """
    clipped = np.clip(x.hi, -1100.0, 710.0)  # beyond, exp is 0 or inf anyway; NaN stays NaN
    x = DD(clipped, np.where(clipped == x.hi, x.lo, 0.0))
    k = np.rint(np.nan_to_num(clipped) / LN2[0])
    r = sub(x, DD(*two_prod(k, LN2[0])))
    r = sub(r, DD(*two_prod(k, LN2[1])))
    r = sub(r, of(k * LN2[2]))
    squaring = np.abs(r.hi) > _SMALL
    s = scale(r, np.where(squaring, -_SQUARINGS, 0))
    m = _TAYLOR[-1]
    for c in reversed(_TAYLOR[:-1]):
        m = add(mul(m, s), c)
    m = mul(m, s)
    for _ in range(_SQUARINGS):
        m = where(squaring, mul(m, add(m, of(2.0))), m)
    return k.astype(np.int64), m


def exp(x):
    """exp of a double-double, to about 2**-95 relative (absolute 2**-1074 when subnormal)."""
    k, m = exp_parts(x)
    return scale(add(of(1.0), m), k)


def expm1(x):
    """exp(x) - 1, relatively accurate near 0 too."""
    k, m = exp_parts(x)
    return where(k == 0, m, sub(scale(add(of(1.0), m), k), of(1.0)))


@np.errstate(all="ignore")
def log1p(u):
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
def log(p):
    """log of float64 values: p = m 2**e with m - 1 exact, log1p(m - 1) + e ln2."""
    p = np.asarray(p, np.float64)
    m, e = np.frexp(p)
    near_one = (p >= 0.5) & (p <= 2.0)  # no frexp: ln2 + log1p(p/2 - 1) would cancel
    m = np.where(near_one, p, m)
    e = np.where(near_one, 0, e).astype(np.float64)
    result = add(log1p(of(m - 1.0)), mul_float(DD(np.float64(LN2[0]), np.float64(LN2[1])), e))
    return _settle(result, np.log(p))
