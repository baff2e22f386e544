"""The float64 reference, held to the mpmath oracle (reference/oracle.py): at most 1 ULP.

Error of one value: |reference - exact| / math.ulp(fl(exact)), fl(exact) being the oracle
rounded to float64: a correctly rounded reference shows <= 0.5, a faithfully rounded one < 1.

Why 1 ULP holds. The reference carries every op in double-double (reference/doubledouble.py,
about 2**-100 relative) and rounds once at the end, so its error is the final rounding, half
an ULP, plus about 2**-45 ULP; results in the subnormal range are formed at a scale and
rounded once too. Measured over every input here: at most 0.5 ULP for every loss and
gradient, that is, correctly rounded. The bound asserted is the contract, 1 ULP.

Exact zeros. math.ulp(0.0) is 2**-1074, the smallest subnormal, and we keep it: where the oracle
is 0 the reference must be 0. NaN, infinities and overflow (fl(exact) = inf) must match exactly.

Gradients of the form a - y (sigmoid(z) - y, softmax(z) sum(y) - y) cancel where the label is
close to the prediction. Double-double keeps 2**-100 of the operands, so a result that is
2**-53 of them (a label equal to the float64 nearest the prediction) still has 47 good bits,
not 53. So gradient errors are in ULPs of max(|exact|, 2**-CANCELLED_BITS x SCALE), SCALE
being the magnitudes the reference's formula subtracts: 1 ULP of the result wherever fewer
than 48 bits cancel. The adversarial families with labels set to the rounded prediction show
up to 80 ULPs of the (tiny) result, 0.52 in this measure.
"""
import functools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import gradients, losses, oracle


# Error measures ---------------------------------------------------------------------------


def ulp_error(ref, exact, scale=0.0):
    """|ref - exact| in ULPs of max(|fl(exact)|, scale).

    NaN, infinities and results beyond float64's range (fl(exact) = inf) must match exactly:
    error 0 when they do, inf when they do not.
    """
    ref, rounded = float(ref), float(exact)
    if math.isnan(rounded) or math.isnan(ref):
        return 0.0 if math.isnan(rounded) and math.isnan(ref) else math.inf
    if math.isinf(rounded) or math.isinf(ref):
        return 0.0 if ref == rounded else math.inf
    unit = math.ulp(max(abs(rounded), float(scale)))
    return float(abs(mpmath.mpf(ref) - exact) / unit)


def worst(errors, inputs):
    i = int(np.argmax(errors))
    return errors[i], inputs[i]


def check(name, refs, exacts, inputs, bound, scales=None):
    """Every error within bound; the message names the worst input."""
    refs = np.ravel(refs)
    scales = np.zeros(len(refs)) if scales is None else np.ravel(scales)
    assert len(refs) == len(exacts) == len(inputs) == len(scales)
    if not len(refs):
        return 0.0
    errors = [ulp_error(r, e, s) for r, e, s in zip(refs, exacts, scales)]
    err, where = worst(errors, inputs)
    assert err <= bound, f"{name}: {err:.3g} ULPs > {bound} at {where}"
    return max(errors)


# Inputs -----------------------------------------------------------------------------------

LABELS = [0.0, 1.0, 0.5, 0.25, 0.75, 0.3, 0.7, 2.0**-53, 1 - 2.0**-53, 1e-300, 1 - 1e-8]
HARD = [0.0, 1.0]

EDGE_LOGITS = [0.0, 5e-324, 1e-300, 1e-16, 1e-8, 0.5, 1.0, 2.0, 10.0, 20.0, 36.0, 37.0, 40.0,
               100.0, 700.0, 709.0, 745.0, 746.0, 1e4, 1e300, math.inf]
EDGE_LOGITS = sorted({s * v for v in EDGE_LOGITS for s in (1.0, -1.0)})

EDGE_PROBS = [0.0, 5e-324, 1e-300, 1e-100, 1e-16, 2.0**-53, 1e-8, 0.1, 0.3, 0.5 - 2.0**-54, 0.5,
              0.5 + 2.0**-53, 0.9, 1 - 1e-8, 1 - 2.0**-52, 1 - 2.0**-53, 1.0]


def random_labels(rng, n):
    """A third hard, the rest soft: uniform, or near 0 and 1."""
    y = rng.random(n)
    kind = rng.integers(0, 4, n)
    y = np.where(kind == 0, rng.integers(0, 2, n).astype(float), y)
    y = np.where(kind == 1, 10.0 ** rng.uniform(-17, 0, n), y)
    return np.where(kind == 2, 1 - 10.0 ** rng.uniform(-16, 0, n), y)


@functools.lru_cache(maxsize=None)
def sigmoid_inputs():
    """Every edge logit with every edge label, and random logits from 1e-3 to 300 in size."""
    grid = [(z, y) for z in EDGE_LOGITS for y in LABELS]
    rng = np.random.default_rng(1)
    n = 1200
    z = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-3, 2.5, n)
    y = random_labels(rng, n)
    z = np.concatenate([[g[0] for g in grid], z])
    y = np.concatenate([[g[1] for g in grid], y])
    return z, y


@functools.lru_cache(maxsize=None)
def bce_inputs():
    """Every edge probability with every edge label; uniform, near-0 and near-1 random p."""
    grid = [(p, y) for p in EDGE_PROBS for y in LABELS]
    rng = np.random.default_rng(2)
    n = 1200
    p = np.concatenate([rng.random(n // 3), 10.0 ** rng.uniform(-300, 0, n // 3),
                        1 - 10.0 ** rng.uniform(-16, 0, n // 3)])
    y = random_labels(rng, n)
    return np.concatenate([[g[0] for g in grid], p]), np.concatenate([[g[1] for g in grid], y])


@functools.lru_cache(maxsize=None)
def mse_inputs():
    """Sizes from 1e-200 to 1e150; far apart, close (a few ulps), equal."""
    rng = np.random.default_rng(3)
    n = 1000
    a = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-200, 150, n)
    near = a * (1 + rng.integers(-8, 9, n) * 2.0**-52)
    far = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-200, 150, n)
    mid = a + rng.normal(0, 1, n) * np.abs(a) * 10.0 ** rng.uniform(-15, 1, n)
    y = np.where(np.arange(n) % 3 == 0, near, np.where(np.arange(n) % 3 == 1, far, mid))
    edge_a = np.array([0.0, 0.0, 1.0, 1.0, 5e-324, -5e-324, 1e-300, 3.0, 0.1])
    edge_y = np.array([0.0, 5e-324, 1.0, 1 - 2.0**-53, 5e-324, 5e-324, -1e-300, 0.1, 3.0])
    return np.concatenate([edge_a, a]), np.concatenate([edge_y, y])


def _rows(rng, count, classes, scale, offset):
    return rng.normal(0, scale, (count, classes)) + offset


def _labels(rng, kind, count, classes):
    if kind == "onehot":
        return np.eye(classes)[rng.integers(0, classes, count)]
    if kind == "soft":
        return rng.dirichlet(np.ones(classes), count)
    if kind == "unnormalised":  # the article's [1, 2]: labels need not sum to 1
        return rng.random((count, classes)) * 2
    y = rng.dirichlet(np.ones(classes), count)  # sparse soft: some exact zeros
    return np.where(rng.random((count, classes)) < 0.4, 0.0, y)


LABEL_KINDS = ("onehot", "soft", "unnormalised", "sparse")


@functools.lru_cache(maxsize=None)
def softmax_rows():
    """Groups of (logits, labels), one group per row length.

    Random rows: 1 to 32 classes, spreads 1e-8 to 300, common offsets 0, +-1e4, 1e8 and -700,
    one-hot, soft, unnormalised and partly-zero labels. Adversarial rows: a dominant class
    (losses of 1e-17 and 1e-300 that an lse - z[label] rounds to 0), -inf logits under zero
    labels, ties, neighbouring floats at 1e8. Long rows (1000 and 10000 classes) measure the
    summation.
    """
    rng = np.random.default_rng(4)
    groups = {}

    def add(z, y):
        z, y = np.atleast_2d(z).astype(float), np.atleast_2d(y).astype(float)
        old = groups.get(z.shape[1])
        groups[z.shape[1]] = (z, y) if old is None else (np.vstack([old[0], z]), np.vstack([old[1], y]))

    for classes in (1, 2, 3, 5, 10, 32):
        for scale in (1e-8, 1.0, 5.0, 30.0, 300.0):
            for offset in (0.0, 1e4, -1e4, 1e8, -700.0):
                for kind in LABEL_KINDS:
                    count = 2 if classes == 32 else 3
                    add(_rows(rng, count, classes, scale, offset), _labels(rng, kind, count, classes))
    inf = math.inf
    for z, y in [
        ([0.0, -40.0], [1, 0]), ([0.0, -700.0], [1, 0]), ([0.0, -745.0], [1, 0]), ([0.0, -1e8], [1, 0]),
        ([0.0, -40.0], [0, 1]), ([40.0, 0.0], [0.7, 0.3]), ([0.1, -30.3], [1, 0]), ([0.1, -30.3], [1.0, 1e-300]),
        ([1e8, 1e8 + 2.0**-26], [1, 0]), ([1e8, 1e8 + 2.0**-26], [0, 1]), ([-inf, 0.0], [0, 1]),
        ([-inf, 3.0], [0.0, 2.0]), ([-inf, -inf], [1, 0]), ([3.0, 3.0], [0.5, 0.5]), ([1.0, 2.0], [1.0, 2.0]),
        ([2.0, 1.0], [1.0, 2.0]), ([1e-8, -1e-8], [1, 0]), ([5e-324, 0.0], [1, 0]), ([1e300, -1e300], [1, 0]),
        ([1e300, -1e300], [0, 1]), ([1e300, -1e300], [0.5, 0.5]),
    ]:
        add(z, y)
    for z, y in [([3.0, 3.0, 1.0], [1, 0, 0]), ([3.0, 3.0, 1.0], [0, 1, 0]), ([0.0, 0.0, 0.0], [1 / 3] * 3),
                 ([-inf, 1.0, -inf], [0, 1, 0]), ([-inf, 1.0, 2.0], [0, 0.5, 0.5]), ([1.0, 2.0, 3.0], [0, 0, 0]),
                 ([20.0, -20.0, 0.0], [1, 0, 0]), ([-700.0, 0.0, -700.0], [0.25, 0.5, 0.25])]:
        add(z, y)
    for classes, count in ((1000, 3), (10000, 1)):
        for kind in ("soft", "unnormalised"):
            add(_rows(rng, count, classes, 3.0, 0.0), _labels(rng, kind, count, classes))
    # Uniform logits under smoothed labels: equal terms, whose roundings in np.sum line up
    # (6 ULPs at 118 classes before losses.accurate_sum); and a confident row with smoothing.
    for classes in (9, 30, 118, 1000):
        for mass in (0.1, 0.9, 3.0):
            add(np.zeros(classes), np.full(classes, mass / classes))
        confident = np.where(np.arange(classes) == 0, 20.0, 0.0)
        add(confident, np.where(np.arange(classes) == 0, 0.9, 0.1 / (classes - 1)))
    return [groups[c] for c in sorted(groups)]


@functools.lru_cache(maxsize=None)
def sparse_rows():
    """The softmax rows with integer labels: random, the argmax, the argmin, and a -inf logit."""
    rng = np.random.default_rng(5)
    out = []
    for z, _ in softmax_rows():
        z = z[~np.all(np.isneginf(z), axis=1)]  # all -inf has no distribution; checked elsewhere
        pick = rng.integers(0, 4, len(z))
        label = np.where(pick == 0, np.argmax(z, axis=1),
                         np.where(pick == 1, np.argmin(z, axis=1), rng.integers(0, z.shape[1], len(z))))
        out.append((z, label))
    return out


@functools.lru_cache(maxsize=None)
def categorical_rows():
    """Probabilities: uniform random, spread over 1e-300..1, one near 1; exact zeros under zero labels."""
    rng = np.random.default_rng(6)
    out = []
    for classes, count in ((1, 50), (2, 350), (3, 300), (10, 300), (1000, 4)):
        p = rng.dirichlet(np.ones(classes), count)
        tiny = 10.0 ** rng.uniform(-300, 0, (count, classes))
        p = np.where(np.arange(count)[:, None] % 3 == 1, tiny, p)
        dominant = np.where(np.arange(classes) == 0, 1 - 2.0**-53, 10.0 ** rng.uniform(-300, -17, (count, classes)))
        p = np.where(np.arange(count)[:, None] % 3 == 2, dominant, p)
        y = np.vstack([_labels(rng, LABEL_KINDS[i % 4], 1, classes) for i in range(count)])
        p = np.where((y == 0) & (rng.random((count, classes)) < 0.2), 0.0, p)
        out.append((p, y))
    for classes in (118, 1000):  # uniform, equal terms (see softmax_rows)
        out.append((np.full((2, classes), 1.0 / classes), np.full((2, classes), [[0.1], [1.0]]) / classes))
    return out


# The oracle itself ------------------------------------------------------------------------


@mpmath.workdps(60)
def test_oracle_closed_forms():
    tiny = mpmath.mpf(2) ** -150
    assert abs(oracle.sigmoid_cross_entropy(0.0, 1.0) - mpmath.log(2)) < tiny
    assert abs(oracle.softmax_cross_entropy([7.0] * 5, [0, 0, 1, 0, 0]) - mpmath.log(5)) < tiny
    assert abs(oracle.binary_crossentropy(0.5, 0.3) - mpmath.log(2)) < tiny
    assert oracle.mean_squared_error(3.0, 1.0, half=True) == 2
    # What float64 arithmetic loses, the oracle keeps: 1 - 2**-60, a saturated sigmoid, lse - z.
    assert abs(oracle.binary_crossentropy(2.0**-60, 0.0) / 2.0**-60 - 1) < mpmath.mpf(2) ** -55
    assert abs(oracle.sigmoid_cross_entropy_grad(800.0, 1.0) / -mpmath.exp(-800) - 1) < tiny
    assert abs(oracle.sparse_softmax_cross_entropy([1e8, 1e8 - 745], 0) / mpmath.exp(-745) - 1) < tiny
    # The conventions: 0 log 0 = 0, a -inf logit under a zero label costs nothing.
    assert oracle.categorical_crossentropy([0.0, 1.0], [0.0, 1.0]) == 0
    assert oracle.softmax_cross_entropy([-math.inf, 0.0], [0.0, 1.0]) == 0
    assert oracle.softmax_cross_entropy([-math.inf, 0.0], [1.0, 0.0]) == math.inf
    assert oracle.sigmoid_cross_entropy(math.inf, 1.0) == 0


def test_oracle_finds_the_correct_rounding_where_cancellation_hides_it():
    """sigmoid(z) - y with y the float64 nearest sigmoid(z): 53 bits cancel, Ziv's loop goes on."""
    z = 0.75
    y = float(mpmath.mpf(1) / (1 + mpmath.exp(-z)))
    with mpmath.workdps(200):
        exact = 1 / (1 + mpmath.exp(-mpmath.mpf(z))) - mpmath.mpf(y)
    got = oracle.sigmoid_cross_entropy_grad(z, y)
    assert got != 0 and abs(got / exact - 1) < mpmath.mpf(2) ** -70


def subset(mask, *columns):
    return [[v for v, keep in zip(column, mask) if keep] for column in columns]


# Losses -----------------------------------------------------------------------------------

ULP_BOUND = 1.0  # the contract; every loss and gradient measures <= 0.5 on these inputs
CANCELLED_BITS = 48  # gradients: 1 ULP of max(|result|, 2**-48 x what the formula subtracts)


def test_sigmoid_cross_entropy():
    z, y = sigmoid_inputs()
    exact = [oracle.sigmoid_cross_entropy(a, b) for a, b in zip(z, y)]
    check("sigmoid_cross_entropy", losses.sigmoid_cross_entropy(z, y), exact, list(zip(z, y)), ULP_BOUND)


def test_binary_crossentropy():
    p, y = bce_inputs()
    exact = [oracle.binary_crossentropy(a, b) for a, b in zip(p, y)]
    check("binary_crossentropy", losses.binary_crossentropy(p, y), exact, list(zip(p, y)), ULP_BOUND)


def test_sparse_categorical_crossentropy():
    p, _ = bce_inputs()
    rng = np.random.default_rng(7)
    rows = np.stack([p, rng.random(p.size), rng.random(p.size)], axis=1)
    label = np.zeros(p.size, np.int64)
    rows[1::2] = rows[1::2, ::-1]
    label[1::2] = 2
    exact = [oracle.sparse_categorical_crossentropy(r, k) for r, k in zip(rows, label)]
    check("sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy(rows, label), exact,
          list(p), ULP_BOUND)


@pytest.mark.parametrize("half", [False, True])
def test_mean_squared_error(half):
    a, y = mse_inputs()
    exact = [oracle.mean_squared_error(u, v, half) for u, v in zip(a, y)]
    check("mean_squared_error", losses.mean_squared_error(a, y, half), exact, list(zip(a, y)), ULP_BOUND)


def test_sparse_softmax_cross_entropy():
    for z, label in sparse_rows():
        exact = [oracle.sparse_softmax_cross_entropy(a, k) for a, k in zip(z, label)]
        check(f"sparse_softmax_cross_entropy, {z.shape[1]} classes", losses.sparse_softmax_cross_entropy(z, label),
              exact, list(zip(z, label)), ULP_BOUND)


def test_softmax_cross_entropy():
    for z, y in softmax_rows():
        exact = [oracle.softmax_cross_entropy(a, b) for a, b in zip(z, y)]
        check(f"softmax_cross_entropy, {z.shape[1]} classes", losses.softmax_cross_entropy(z, y), exact,
              list(zip(z, y)), ULP_BOUND)


def test_categorical_crossentropy():
    for p, y in categorical_rows():
        exact = [oracle.categorical_crossentropy(a, b) for a, b in zip(p, y)]
        check(f"categorical_crossentropy, {p.shape[1]} classes", losses.categorical_crossentropy(p, y), exact,
              list(zip(p, y)), ULP_BOUND)


# Gradients --------------------------------------------------------------------------------


def _sigmoid(z):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad_scale(z, y):
    """What sigmoid(z) - y subtracts, in the reference's form with the smaller operands:
    |1 - y| + sigmoid(-z) (z >= 0) or sigmoid(z) + |y| (saturated), |1/2 - y| + |sigmoid(z) - 1/2|
    (centred); times 2**-CANCELLED_BITS."""
    with np.errstate(invalid="ignore"):
        saturated = np.where(z >= 0, np.abs(1 - y) + _sigmoid(-z), _sigmoid(z) + np.abs(y))
        centred = np.abs(0.5 - y) + np.abs(_sigmoid(z) - 0.5)
    return np.minimum(saturated, centred) * 2.0**-CANCELLED_BITS


@functools.lru_cache(maxsize=None)
def sigmoid_grad_inputs():
    """The sigmoid inputs, and labels set to the float64 nearest sigmoid(z): the worst case of
    the cancellation in sigmoid(z) - y, all 53 bits."""
    z, y = sigmoid_inputs()
    rng = np.random.default_rng(8)
    near = rng.choice([-1.0, 1.0], 300) * 10.0 ** rng.uniform(-3, 1.5, 300)
    with mpmath.workdps(40):
        nearest = [float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in near]
    return np.concatenate([z, near]), np.concatenate([y, nearest])


def test_sigmoid_cross_entropy_grad():
    z, y = sigmoid_grad_inputs()
    exact = [oracle.sigmoid_cross_entropy_grad(a, b) for a, b in zip(z, y)]
    check("sigmoid grad", gradients.sigmoid_cross_entropy(z, y), exact, list(zip(z, y)), ULP_BOUND,
          sigmoid_grad_scale(z, y))


def test_sigmoid_half_squared_error_grad():
    z, y = sigmoid_grad_inputs()
    exact = [oracle.sigmoid_half_squared_error_grad(a, b) for a, b in zip(z, y)]
    scale = sigmoid_grad_scale(z, y) * _sigmoid(z) * _sigmoid(-z)
    check("sigmoid half squared error grad", gradients.sigmoid_half_squared_error(z, y), exact,
          list(zip(z, y)), ULP_BOUND, scale)


POS_WEIGHTS = [0.25, 3.0, 1e-3, 1e6]


@pytest.mark.parametrize("pos_weight", POS_WEIGHTS)
def test_weighted_sigmoid_cross_entropy(pos_weight):
    """tf.nn.weighted_cross_entropy_with_logits and torch's pos_weight: the loss, and its
    gradient (1 - y) sigmoid(z) - q y sigmoid(-z), whose two terms cancel near the optimum."""
    z, y = sigmoid_inputs()
    exact = [oracle.sigmoid_cross_entropy(a, b, pos_weight) for a, b in zip(z, y)]
    check("weighted sigmoid_cross_entropy", losses.sigmoid_cross_entropy(z, y, pos_weight), exact,
          list(zip(z, y)), ULP_BOUND)
    exact = [oracle.sigmoid_cross_entropy_grad(a, b, pos_weight) for a, b in zip(z, y)]
    with np.errstate(invalid="ignore"):
        scale = (np.abs(1 - y) * _sigmoid(z) + pos_weight * np.abs(y) * _sigmoid(-z)) * 2.0**-CANCELLED_BITS
    check("weighted sigmoid grad", gradients.sigmoid_cross_entropy(z, y, pos_weight), exact, list(zip(z, y)),
          ULP_BOUND, scale)


@pytest.mark.parametrize("half", [False, True])
def test_mean_squared_error_grad(half):
    a, y = mse_inputs()
    exact = [oracle.mean_squared_error_grad(u, v, half) for u, v in zip(a, y)]
    check("mean_squared_error grad", gradients.mean_squared_error(a, y, half), exact, list(zip(a, y)),
          ULP_BOUND)


def softmax_f64(z):
    """top, softmax and rest in plain float64: magnitudes for SCALE, not values under test."""
    m = np.max(z, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(z - m)
    top = np.argmax(z, axis=1)
    others = e.copy()
    others[np.arange(len(z)), top] = 0.0
    rest = others.sum(axis=1)
    return top, e / (1 + rest)[:, None], rest


def softmax_grad_scale(z, y):
    """What softmax(z) sum(y) - y subtracts: p_j |sum y| and |y_j|; at a top class holding most
    of the mass (rest < 1), |sum of the other labels| and |sum y| rest / (1 + rest); times
    2**-CANCELLED_BITS."""
    top, p, rest = softmax_f64(z)
    total = y.sum(axis=1)
    scale = p * np.abs(total)[:, None] + np.abs(y)
    rows = np.arange(len(z))[rest < 1]
    at_top = top[rows]
    scale[rows, at_top] = np.abs(total[rows] - y[rows, at_top]) + np.abs(total[rows]) * rest[rows] / (1 + rest[rows])
    return scale * 2.0**-CANCELLED_BITS


@mpmath.workdps(40)
def nearest_softmax(row):
    e = [mpmath.exp(mpmath.mpf(v)) for v in row]
    total = mpmath.fsum(e)
    return [float(v / total) for v in e]


@functools.lru_cache(maxsize=None)
def softmax_grad_rows():
    """The softmax rows, and rows whose labels are the float64 nearest softmax(z)."""
    rng = np.random.default_rng(9)
    rows = list(softmax_rows())
    for classes in (2, 5, 30):
        z = rng.normal(0, 3, (40, classes))
        rows.append((z, np.array([nearest_softmax(row) for row in z])))
    return rows


def test_softmax_cross_entropy_grad():
    for z, y in softmax_grad_rows():
        exact = [v for a, b in zip(z, y) for v in oracle.softmax_cross_entropy_grad(a, b)]
        inputs = [(a, b, j) for a, b in zip(z, y) for j in range(z.shape[1])]
        check(f"softmax grad, {z.shape[1]} classes", gradients.softmax_cross_entropy(z, y), exact, inputs,
              ULP_BOUND, softmax_grad_scale(z, y))


def test_sparse_softmax_cross_entropy_grad():
    """softmax_j - [j == label]: nothing cancels (1 - softmax at the top class is rest / (1 + rest)),
    so plain ULPs of the result."""
    for z, label in sparse_rows():
        exact = [v for a, k in zip(z, label) for v in oracle.sparse_softmax_cross_entropy_grad(a, k)]
        inputs = [(a, k, j) for a, k in zip(z, label) for j in range(z.shape[1])]
        check(f"sparse softmax grad, {z.shape[1]} classes", gradients.sparse_softmax_cross_entropy(z, label),
              exact, inputs, ULP_BOUND)


# Special rows ------------------------------------------------------------------------------


def test_rows_without_a_finite_maximum_are_nan_in_both():
    z = np.array([[-math.inf, -math.inf, -math.inf]])
    y = np.array([[1.0, 0.0, 0.0]])
    assert np.isnan(losses.softmax_cross_entropy(z, y)).all()
    assert mpmath.isnan(oracle.softmax_cross_entropy(z[0], y[0]))
    assert np.isnan(gradients.softmax_cross_entropy(z, y)).all()
    assert np.isnan(gradients.sparse_softmax_cross_entropy(z, np.array([0]))).all()
    assert all(mpmath.isnan(v) for v in oracle.sparse_softmax_cross_entropy_grad(z[0], 0))


# Any float64 at all (hypothesis, derandomised) -----------------------------------------------

ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)
UNIT = st.floats(0.0, 1.0, width=64)
SETTINGS = settings(derandomize=True, max_examples=300, deadline=None, database=None)


@SETTINGS
@given(ANY_FLOAT, UNIT)
def test_sigmoid_any_float(z, y):
    assert ulp_error(losses.sigmoid_cross_entropy(z, y), oracle.sigmoid_cross_entropy(z, y)) <= ULP_BOUND
    scale = sigmoid_grad_scale(np.float64(z), np.float64(y))
    grad = gradients.sigmoid_cross_entropy(z, y)
    assert ulp_error(grad, oracle.sigmoid_cross_entropy_grad(z, y), scale) <= ULP_BOUND


@SETTINGS
@given(UNIT, UNIT)
def test_binary_crossentropy_any_probability(p, y):
    assert ulp_error(losses.binary_crossentropy(p, y), oracle.binary_crossentropy(p, y)) <= ULP_BOUND


@SETTINGS
@given(st.lists(st.floats(-1e6, 1e6, width=64), min_size=1, max_size=6), st.data())
def test_softmax_any_row(z, data):
    label = data.draw(st.integers(0, len(z) - 1))
    y = data.draw(st.lists(st.floats(0.0, 2.0, width=64), min_size=len(z), max_size=len(z)))
    row, labels, one = np.array([z]), np.array([y]), np.array([label])
    assert ulp_error(losses.sparse_softmax_cross_entropy(row, one)[0],
                     oracle.sparse_softmax_cross_entropy(z, label)) <= ULP_BOUND
    assert ulp_error(losses.softmax_cross_entropy(row, labels)[0], oracle.softmax_cross_entropy(z, y)) <= ULP_BOUND
    sparse_grad = gradients.sparse_softmax_cross_entropy(row, one)[0]
    for g, e in zip(sparse_grad, oracle.sparse_softmax_cross_entropy_grad(z, label)):
        assert ulp_error(g, e) <= ULP_BOUND
    scale = softmax_grad_scale(row, labels)[0]
    for g, e, s in zip(gradients.softmax_cross_entropy(row, labels)[0], oracle.softmax_cross_entropy_grad(z, y), scale):
        assert ulp_error(g, e, s) <= ULP_BOUND


def test_enough_inputs():
    """At least a thousand inputs per op, random and adversarial together."""
    assert min(len(sigmoid_inputs()[0]), len(bce_inputs()[0]), len(mse_inputs()[0])) >= 1000
    assert sum(len(z) for z, _ in softmax_rows()) >= 1000
    assert sum(len(z) for z, _ in sparse_rows()) >= 1000
    assert sum(len(p) for p, _ in categorical_rows()) >= 1000
