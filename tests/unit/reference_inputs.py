"""Error measures and input families for holding the float64 reference to the mpmath oracle.

Error of one value: |reference - exact| / math.ulp(fl(exact)), fl(exact) being the oracle
rounded to float64: a correctly rounded reference shows <= 0.5, a faithfully rounded one < 1.
Exact zeros: math.ulp(0.0) is 2**-1074, the smallest subnormal, and we keep it: where the
oracle is 0 the reference must be 0. NaN, infinities and overflow (fl(exact) = inf) must
match exactly.
"""
import functools
import math

import mpmath
import numpy as np

ULP_BOUND = 1.0  # the contract; every loss and gradient measures <= 0.5 on these inputs


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
    # (6 ULPs at 118 classes before an accurate sum); and a confident row with smoothing.
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
