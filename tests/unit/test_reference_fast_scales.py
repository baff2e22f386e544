"""The fast tier's conditioning scales (reference/numerics/fast_scales.py), held to their own
promise: within SCALE_REL = 2**-42 relative (plus SCALE_ABS, the subnormal range) of their
formula evaluated exactly in mpmath, with NaN and infinities where the formula has them; and to
the double-double tier's scales on adversarial rows, through the registry as the checks ask.

Why 2**-42 is enough: a check passes when |actual - expected| <= ulp x ulp(expected) +
cond x eps x scale + abs, so a scale off by 2**-42 relative moves the bound by 2**-42 of
itself; a verdict could change only for an error equal to the bound to 12 significant digits.
test_a_wrong_scale_fails shows the check below catches a scale off by far less than any
tolerance would notice (2**-36), or missing one of its terms.
"""
import functools
import tracemalloc

import mpmath
import numpy as np
import pytest

from reference import registry
from reference.numerics import fast_scales, fast_softmax
from reference.ops import softmax as ops
from tests.unit import reference_oracle as oracle
from tests.unit.test_reference_fast_tier import _dense_cases, _sparse_cases

SPARSE = "sparse_softmax_cross_entropy"
DENSE = "softmax_cross_entropy"


def _parts(z_row):
    """(p, t) of one row in mpmath (t_j = 2 (m - z_j) + log1p(rest) + 1), or None without a
    finite maximum."""
    with mpmath.workdps(40):
        parts = oracle._softmax_parts(z_row)
        if parts is None:
            return None
        _, gaps, e, rest = parts
        lse = mpmath.log1p(rest)
        return [v / (1 + rest) for v in e], [-2 * g + lse + 1 for g in gaps]


def _times(a, b):
    return mpmath.mpf(0) if a == 0 else a * b  # 0 x inf = 0: a masked class adds nothing


def exact_sparse_scales(z_row, label, loss):
    """(the loss's scale, the gradient's scale per class), exactly."""
    parts = _parts(z_row)
    if parts is None:
        return mpmath.nan, [mpmath.nan] * len(z_row)
    p, t = parts
    with mpmath.workdps(40):
        loss_scale = abs(loss) + t[label] + mpmath.log(max(len(z_row), 2), 2)
        grad_scale = [_times(p[j], t[j]) + (1 if j == label else 0) for j in range(len(z_row))]
    return loss_scale, grad_scale


def exact_dense_scales(z_row, y_row, loss):
    parts = _parts(z_row)
    if parts is None:
        return mpmath.nan, [mpmath.nan] * len(z_row)
    p, t = parts
    y = [mpmath.mpf(float(v)) for v in y_row]
    with mpmath.workdps(40):
        total = abs(oracle._exact_sum(y))
        terms = mpmath.fsum(_times(abs(v), tj) for v, tj in zip(y, t))
        roundings = int(np.ceil(np.log2(max(len(y), 1))))
        loss_scale = abs(loss) + terms * (1 + roundings)
        grad_scale = [_times(p[j] * total, t[j]) + abs(y[j]) for j in range(len(y))]
    return loss_scale, grad_scale


def scale_units(fast, exact) -> tuple[float, int]:
    """The largest (|fast - exact| - SCALE_ABS) / (SCALE_REL |exact|), and where; inf where a
    NaN or an infinity of one is not the other's."""
    worst, where = 0.0, -1
    for i, (f, e) in enumerate(zip(np.ravel(fast), exact)):
        before = worst
        if mpmath.isnan(e) or mpmath.isinf(e) or np.isnan(f) or np.isinf(f):
            same = (np.isnan(f) and mpmath.isnan(e)) or (not mpmath.isnan(e) and f == float(e))
            worst = max(worst, 0.0 if same else np.inf)
        else:
            error = max(abs(mpmath.mpf(float(f)) - e) - fast_scales.SCALE_ABS, 0)
            worst = max(worst, float(error / (fast_scales.SCALE_REL * abs(e))) if e else (np.inf if error else 0.0))
        where = i if worst > before else where
    return worst, where


def assert_held(name, fast, exact, z, measured):
    units, where = scale_units(fast, exact)
    measured[name] = max(measured.get(name, 0.0), units)
    assert units <= 1.0, f"{name}, {z.shape[1]} classes: {units:.3g} x SCALE_REL at element {where}"


SCALES = {
    "sparse": (_sparse_cases, oracle.sparse_softmax_cross_entropy, exact_sparse_scales,
               ops.sparse_softmax_cross_entropy_loss_and_scale, ops.sparse_softmax_cross_entropy_grad_and_scale),
    "dense": (_dense_cases, oracle.softmax_cross_entropy, exact_dense_scales,
              ops.softmax_cross_entropy_loss_and_scale, ops.softmax_cross_entropy_grad_and_scale),
}


@functools.lru_cache(maxsize=None)
def _exact_scales(op):
    cases, exact_loss_of, exact_scales_of, _, _ = SCALES[op]
    out = []
    for z, labels in cases():
        with np.errstate(all="ignore"):
            scales = [exact_scales_of(a, k, exact_loss_of(a, k)) for a, k in zip(z, labels)]
        out.append(([s[0] for s in scales], [g for s in scales for g in s[1]]))
    return out


@pytest.mark.parametrize("op", SCALES)
def test_the_fast_scales_keep_their_bound(op):
    """Every row of the fast tier's oracle test (1 to 32,001 classes; offsets 0, +-1e4, 1e8,
    -700; spreads to 300; -inf masks, ties, a confident and a flat row), both scales."""
    cases, _, _, loss_and_scale, grad_and_scale = SCALES[op]
    measured = {}
    for (z, labels), (exact_loss_scale, exact_grad_scale) in zip(cases(), _exact_scales(op)):
        with np.errstate(all="ignore"):
            assert_held("loss scale", loss_and_scale(z, labels, -1, "float32")[1], exact_loss_scale, z, measured)
            assert_held("grad scale", grad_and_scale(z, labels, -1, "float32")[1], exact_grad_scale, z, measured)
    # Measured: sparse 0.001 (loss scale) and 0.25 (gradient), dense 0.0025 and 0.25 of SCALE_REL:
    # the gradient's at probabilities near 2**-1000, whose exponent's rounding exp multiplies
    # by |d_j| (the bound's d_j u, up to 0.43 of SCALE_REL).
    assert measured["loss scale"] < 0.1 and measured["grad scale"] < 0.5, measured


def test_a_wrong_scale_fails():
    """The check above fails on a scale 2**-36 too large, or without its + 1 (t_j = 2 d_j + L)."""
    (z, labels), (exact_loss_scale, exact_grad_scale) = _sparse_cases()[-3], _exact_scales("sparse")[-3]
    loss_scale = ops.sparse_softmax_cross_entropy_loss_and_scale(z, labels, -1, "float32")[1]
    grad_scale = ops.sparse_softmax_cross_entropy_grad_and_scale(z, labels, -1, "float32")[1]
    assert_held("right", loss_scale, exact_loss_scale, z, {})
    with pytest.raises(AssertionError):
        assert_held("too large", grad_scale * (1 + 2.0 ** -36), exact_grad_scale, z, {})
    p = ops.sparse_softmax_cross_entropy_grad(z, labels, -1, "float32") + np.eye(z.shape[1])[labels]
    with pytest.raises(AssertionError):
        assert_held("without + 1", grad_scale - p, exact_grad_scale, z, {})
    with pytest.raises(AssertionError):
        assert_held("without + 1", loss_scale - 1.0, exact_loss_scale, z, {})


def _adversarial(classes, seed):
    """float32 logits: a spread of 3, offsets 1e4 and 1e8 (where float32 keeps 8, not 2**-10),
    a confident row, a flat row, and rows with -inf masked classes."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, (8, classes))
    z[1] += 1e4
    z[2] += 1e8
    z[3, 0] += 80.0
    z[4] = 7.0
    masked = rng.random((2, classes)) < 0.25
    masked[:, 0] = False
    z[5:7] = np.where(masked, -np.inf, z[5:7])
    z[7] = -1e4 + z[7]
    return z.astype(np.float32).astype(np.float64), rng.integers(0, classes, 8) * (classes > 1)


def _close(fast, exact, values=0.0, rel=fast_scales.SCALE_REL):
    """|fast - exact| within 2 SCALE_REL relative (both tiers are within SCALE_REL of the
    formula: the double-double tier's scale rounds log_softmax before exp) or 2 SCALE_ABS;
    plus `values`, what a scale built from a value (the soft cap's |dL/dc|) may move by."""
    fast, exact = np.asarray(fast), np.asarray(exact)
    assert np.array_equal(np.isnan(fast), np.isnan(exact)) and np.array_equal(np.isinf(fast), np.isinf(exact))
    finite = np.isfinite(exact)
    allowed = 2 * rel * np.abs(exact) + 2 * fast_scales.SCALE_ABS + values
    return bool(np.all(np.abs(fast[finite] - exact[finite]) <= np.broadcast_to(allowed, exact.shape)[finite]))


def _cap_terms(op, z, y, softcap):
    """(loss, gradient): what the soft cap's scale terms built from |dL/dc| may move by in the
    fast tier, whose dL/dc is within fast_tier_ulps(V) u of its scale S_c: that bound times
    sum_j S_c |c_j| (the loss's term) and 2 tanh^2 S_c (the gradient's)."""
    if softcap is None:
        return 0.0, 0.0
    capped = ops.soft_cap(z, softcap)
    grad_and_scale = (ops.sparse_softmax_cross_entropy_grad_and_scale if op == SPARSE
                      else ops.softmax_cross_entropy_grad_and_scale)
    moved = fast_softmax.fast_tier_ulps(z.shape[-1]) * fast_softmax.U * grad_and_scale(capped, y, -1, "float32")[1]
    size = np.where(np.isfinite(capped), np.abs(capped), 0.0)
    return np.sum(moved * size, axis=-1), 2.0 * moved * np.where(np.isfinite(capped), (capped / softcap) ** 2, 1.0)


OPTIONS = [{}, {"reduction": "mean"}, {"reduction": "sum", "ignore_index": 0}, {"label_smoothing": 0.1},
           {"z_loss": 1e-4}, {"softcap": 30.0}, {"reduction": "mean", "sample_weight": "seeded"}]


@pytest.mark.parametrize("classes", [1, 2, 3, 1000, 32001])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_the_registry_scales_agree_with_the_double_double_tier(classes, options):
    """evaluate_scale and evaluate_grad as a float32 check asks them (fast tier) against the
    float64 tier's (double-double), on adversarial rows, with options."""
    z, labels = _adversarial(classes, classes)
    if options.get("sample_weight") == "seeded":
        options = {**options, "sample_weight": np.random.default_rng(1).uniform(0.5, 2.0, len(z))}
    for op, y in ((SPARSE, labels), (DENSE, np.random.default_rng(2).dirichlet(np.ones(classes), len(z)))):
        if op == DENSE and "ignore_index" in options:
            continue
        inputs = {"logits": z, "labels": y}
        with np.errstate(all="ignore"):
            moved = _cap_terms(op, z, y, options.get("softcap"))
            rel = fast_scales.OTHER_SCALE_REL if {"z_loss", "softcap"} & set(options) else fast_scales.SCALE_REL
            checks = [(registry.evaluate_scale, moved[0]), (lambda *a: registry.evaluate_grad(*a)[1], moved[1])]
            if op == DENSE:  # the gradient with respect to the soft labels: -log p, and its scale
                checks.append((lambda *a: registry.evaluate_grad(*a, wrt="labels")[1], 0.0))
            for what, values in checks:
                fast = what(op, "exact", inputs, options, "float32")
                assert _close(fast, what(op, "exact", inputs, options, "float64"), values, rel), (op, options)
            for dtype in ("float32", "float64"):  # a loss and its scale from one pass: the same values
                loss, scale = registry.evaluate_loss_and_scale(op, "exact", inputs, options, dtype)
                assert loss.tobytes() == registry.evaluate_loss(op, "exact", inputs, options, dtype).tobytes()
                assert scale.tobytes() == registry.evaluate_scale(op, "exact", inputs, options, dtype).tobytes()


def _peak(function) -> int:
    tracemalloc.start()
    try:
        result = function()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("op", [SPARSE, DENSE])
def test_a_checks_reference_costs_its_outputs_and_a_few_row_blocks(op):
    """Peak memory (tracemalloc sees NumPy's buffers): a loss and its scale a few blocks, a
    gradient and its scale the two arrays they are (twice the float64 logits) and a few blocks,
    also where a mean divides them."""
    rng = np.random.default_rng(9)
    z = rng.normal(0.0, 2.0, (64, 32001)).astype(np.float32).astype(np.float64)
    labels = rng.integers(0, 32001, 64) if op == SPARSE else rng.dirichlet(np.ones(32001), 64)
    inputs = {"logits": z, "labels": labels}
    blocks = 24 * fast_softmax.BLOCK_ELEMENTS * 8  # a few float64 blocks per thread
    for options in ({}, {"reduction": "mean"}):
        peak, _ = _peak(lambda options=options: registry.evaluate_loss(op, "exact", inputs, options, "float32"))
        assert peak <= blocks, (options, peak)
        peak, _ = _peak(lambda options=options: registry.evaluate_scale(op, "exact", inputs, options, "float32"))
        assert peak <= blocks, (options, peak)
        peak, (grad, scale) = _peak(
            lambda options=options: registry.evaluate_grad(op, "exact", inputs, options, "float32"))
        assert peak <= 2 * z.nbytes + blocks, (options, peak / z.nbytes)
        assert grad.shape == scale.shape == z.shape
    if op == SPARSE:  # smoothed: the one-hot rows made dense (one more array as large), smoothed in place
        peak, _ = _peak(lambda: registry.evaluate_grad(op, "exact", inputs, {"label_smoothing": 0.1}, "float32"))
        assert peak <= 3 * z.nbytes + blocks, peak / z.nbytes
