"""The fast tier of the softmax cross-entropies (reference/numerics/fast_softmax.py), held to
its own promise against the mpmath oracle: |fast - exact| <= fast_tier_ulps(V) x 2**-53 x the
op's conditioning scale, with NaN and infinities exactly where the exact value has them. And
the dispatcher: the fast tier for float32, bfloat16 and float16 checks, double-double for
float64, and the same tier whichever way the registry is asked, for values and their scales
(the scales' own bound: tests/unit/test_reference_fast_scales.py).
"""
import functools

import mpmath
import numpy as np
import pytest

from reference import registry, tiers
from reference.dtypes import eps
from reference.numerics import fast_scales, fast_softmax
from reference.ops import softmax as ops
from tests.unit import reference_oracle as oracle
from tests.unit.reference_inputs import softmax_rows, sparse_rows

U = fast_softmax.U


def _float32_rows():
    """Rows as float32 checks feed them: float32 logits at vocabulary sizes that are no multiple
    of a tile, with a large common offset, a confident row and a flat one."""
    rng = np.random.default_rng(11)
    rows = []
    for classes, offset in ((1000, 0.0), (32001, 1e4), (4099, -50.0)):
        z = rng.normal(offset, 3.0, (3, classes)).astype(np.float32).astype(np.float64)
        z[1, 7] = offset + 60.0  # confident: the loss at class 7 is about 1e-22
        z[2] = np.float32(offset)  # flat: every class has 1 / V
        rows.append((z, np.array([7, 7, classes - 1])))
    return rows


def _units(fast, exact, scale) -> tuple[float, int]:
    """The largest (|fast - exact| - FAST_TIER_ABS) in units of 2**-53 x scale, and where;
    inf where a NaN or an infinity of one is not the other's."""
    worst, where = 0.0, -1
    for i, (f, e, s) in enumerate(zip(np.ravel(fast), exact, np.ravel(scale))):
        before = worst
        rounded = float(e)
        if np.isnan(rounded) or np.isinf(rounded) or np.isnan(f) or np.isinf(f):
            same = (np.isnan(f) and np.isnan(rounded)) or f == rounded
            worst = max(worst, 0.0 if same else np.inf)
        else:
            error = max(abs(mpmath.mpf(float(f)) - e) - fast_softmax.FAST_TIER_ABS, 0)
            worst = max(worst, float(error / (mpmath.mpf(U) * float(s))) if s else (np.inf if error else 0.0))
        where = i if worst > before else where
    return worst, where


@functools.lru_cache(maxsize=None)
def _sparse_cases():
    return [(z, label) for z, label in sparse_rows()] + _float32_rows()


@functools.lru_cache(maxsize=None)
def _dense_cases():
    cases = list(softmax_rows())
    for z, _label in _float32_rows():
        y = np.random.default_rng(12).exponential(size=z.shape)
        cases.append((z, y / y.sum(axis=1, keepdims=True)))
    return cases


def _held(name, fast, exact, scale, z, measured):
    units, where = _units(fast, exact, scale)
    measured[name] = max(measured.get(name, 0.0), units)
    classes = z.shape[1]
    assert units <= fast_softmax.fast_tier_ulps(classes), (
        f"{name}, {classes} classes: {units:.3g} units of 2**-53 x scale > {fast_softmax.fast_tier_ulps(classes):.3g}"
        f" at element {where} (row {z[where // (classes if len(fast.flat) > len(z) else 1)][:8]})")


OPS = {
    "sparse": (_sparse_cases, ops.sparse_softmax_cross_entropy, ops.sparse_softmax_cross_entropy_grad,
               oracle.sparse_softmax_cross_entropy, oracle.sparse_softmax_cross_entropy_grad,
               ops.sparse_softmax_cross_entropy_scale, ops.sparse_softmax_cross_entropy_grad_scale),
    "dense": (_dense_cases, ops.softmax_cross_entropy, ops.softmax_cross_entropy_grad,
              oracle.softmax_cross_entropy, oracle.softmax_cross_entropy_grad,
              ops.softmax_cross_entropy_scale, ops.softmax_cross_entropy_grad_scale),
}


@pytest.mark.parametrize("op", OPS)
def test_the_fast_tier_keeps_its_bound(op):
    cases, loss_of, grad_of, exact_loss_of, exact_grad_of, scale_of, grad_scale_of = OPS[op]
    measured = {}
    for z, labels in cases():
        with np.errstate(all="ignore"):
            exact = [exact_loss_of(a, k) for a, k in zip(z, labels)]
            scale = scale_of(z, labels, np.array([float(e) for e in exact]), -1)
            _held("loss", loss_of(z, labels, -1, "float32"), exact, scale, z, measured)
            exact_grad = [g for a, k in zip(z, labels) for g in exact_grad_of(a, k)]
            _held("grad", grad_of(z, labels, -1, "float32"), exact_grad, grad_scale_of(z, labels, -1), z, measured)
    # Measured: sparse 0.58 (loss) and 1.4 (gradient), dense 3.0 and 2.4, against bounds of 50 and more.
    assert measured["loss"] < 8 and measured["grad"] < 8, measured


def test_the_fast_tier_gives_the_exact_tiers_nan_and_infinities():
    inf = np.inf
    z = np.array([[1.0, -inf, 2.0], [inf, 0.0, 1.0], [np.nan, 0.0, 0.0], [-inf, -inf, -inf], [0.0, 0.0, 0.0]])
    labels = np.array([1, 0, 2, 0, 1])
    y = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    with np.errstate(all="ignore"):
        for function, target in ((ops.sparse_softmax_cross_entropy, labels), (ops.softmax_cross_entropy, y),
                                 (ops.sparse_softmax_cross_entropy_grad, labels), (ops.softmax_cross_entropy_grad, y)):
            fast, exact = function(z, target, -1, "float32"), function(z, target, -1, "float64")
            assert np.array_equal(np.isnan(fast), np.isnan(exact)), function.__name__
            special = ~np.isfinite(exact)
            assert np.array_equal(fast[special], exact[special], equal_nan=True), function.__name__


def test_the_fast_tier_lays_out_any_class_axis_and_many_blocks_like_the_exact_one():
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 4.0, (40, 3, 7000))  # 280,000 rows of 3 classes on axis 1: 13 blocks, on threads
    labels = rng.integers(0, 3, (40, 7000))
    y = rng.dirichlet(np.ones(3), (40, 7000)).transpose(0, 2, 1)
    assert len(fast_softmax._blocks(280_000, 3)) >= 4  # enough blocks for the thread pool
    for function, target in ((ops.sparse_softmax_cross_entropy, labels),
                             (ops.sparse_softmax_cross_entropy_grad, labels),
                             (ops.softmax_cross_entropy, y), (ops.softmax_cross_entropy_grad, y)):
        fast, exact = function(z, target, 1, "float32"), function(z, target, 1, "float64")
        assert fast.shape == exact.shape and np.allclose(fast, exact, rtol=1e-13, atol=1e-15), function.__name__


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_and_gradient_from_one_pass_are_the_separate_ones_bit_for_bit(dtype):
    rng = np.random.default_rng(5)
    width = 4000 if dtype == "float32" else 100  # fast: 120,000 rows on axis 1, many blocks on threads
    z = rng.normal(0.0, 6.0, (30, 5, width))
    z[0, :, 0] = [np.inf, 0.0, 1.0, 2.0, 3.0]  # a row for the exact tier
    z[1, 2, 1] = np.nan
    labels = rng.integers(0, 5, (30, width))
    with np.errstate(all="ignore"):
        loss, grad = ops.sparse_softmax_cross_entropy_and_grad(z, labels, 1, dtype)
        alone = (ops.sparse_softmax_cross_entropy(z, labels, 1, dtype),
                 ops.sparse_softmax_cross_entropy_grad(z, labels, 1, dtype))
    assert loss.shape == alone[0].shape and grad.shape == alone[1].shape
    assert loss.tobytes() == alone[0].tobytes() and grad.tobytes() == alone[1].tobytes()
    assert np.isnan(loss[0, 0]) and np.isnan(grad[1, :, 1]).all()


@pytest.mark.parametrize("dtype, expected", [("float16", "fast"), ("bfloat16", "fast"), ("float32", "fast"),
                                             ("float64", "double-double")])
def test_the_dispatcher_picks_the_tier_whose_bound_fits_the_dtype(dtype, expected, monkeypatch):
    assert tiers.tier(dtype, 128256) == expected
    assert tiers.tier(dtype, 2 ** 31) == expected
    calls = []
    for module, name in ((fast_softmax, "sparse_loss"), (fast_softmax, "dense_loss"),
                         (fast_scales, "sparse_loss_and_scale"), (fast_scales, "sparse_grad_and_scale"),
                         (fast_scales, "dense_loss_and_scale"), (fast_scales, "dense_grad_and_scale")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    z = np.array([[1.0, 2.0, 0.5]])
    for op, labels in (("sparse_softmax_cross_entropy", np.array([1])),
                       ("softmax_cross_entropy", np.array([[0.0, 1.0, 0.0]]))):
        inputs = {"logits": z, "labels": labels}
        registry.evaluate_loss(op, "exact", inputs, {}, dtype)
        registry.evaluate_scale(op, "exact", inputs, {}, dtype)  # the loss again, and its scale: one pass
        registry.evaluate_grad(op, "exact", inputs, {}, dtype)  # the gradient and its scale: one pass
    fast_calls = ["sparse_loss", "sparse_loss_and_scale", "sparse_grad_and_scale",
                  "dense_loss", "dense_loss_and_scale", "dense_grad_and_scale"]
    assert calls == (fast_calls if expected == "fast" else [])


def test_the_fast_tier_bound_stays_inside_every_narrow_dtypes_tolerance():
    for dtype in ("float16", "bfloat16", "float32"):
        assert fast_softmax.fast_tier_ulps(2 ** 31) * U * tiers.MARGIN <= eps(dtype)
    assert fast_softmax.fast_tier_ulps(2) * U > eps("float64") / tiers.MARGIN
