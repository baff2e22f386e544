"""An arbitrary-precision oracle for the float64 reference, in mpmath.

Each function takes float64 inputs (a scalar pair or one class row) and returns the loss or
gradient of exactly those inputs as mpmath numbers, to about 2**-80 relative: far beyond
float64's 2**-53, so float() of a result is the float64 nearest the exact value (barring a tie
closer than 2**-80). mpmath.mpf(float) is exact, so no input rounding is added here.

How the oracle stays right where float64 arithmetic goes wrong:
- differences of inputs (1 - y, 1 - p, a - y, z_j - max z, sums of labels) are exact
  (mpmath's exact=True), since 1 - 1e-300 needs more bits than any fixed precision has;
- cancellation built into a formula is rewritten away, not out-computed: log softmax is
  (z_j - m) - log1p(sum over the other classes of exp(z_k - m)), sigmoid(z) - y is
  (1 - y) - sigmoid(-z) for z >= 0, and 1 - softmax at the top class is rest / (1 + rest);
- what cancellation remains depends on the values (a soft label close to the prediction), so
  every result is computed at DPS digits and again at twice that, doubling until two agree
  to 2**-80 relative (Ziv's strategy); a value below 2**-1100 is zero to float64, and a zero
  is confirmed at ZERO_DPS digits, since total cancellation gives zero at every low precision.

Conventions follow the reference (reference/ops/): 0 * log 0 = 0, a zero label weight ignores an
infinite term (a -inf logit with label 0 contributes nothing), and a class row without a
finite maximum (all -inf, or a +inf or NaN logit) gives NaN. The functions are pure: each
sets the working precision only for the duration of its call.
"""
import mpmath
from mpmath import mpf

DPS = 50  # first working precision, in decimal digits (about 166 bits)
MAX_DPS = 1600  # beyond float64's whole exponent range (2**-1074 .. 2**1024)
AGREE = mpf(2) ** -80
NEGLIGIBLE = mpf(2) ** -1100  # below half the smallest subnormal, 2**-1075
# A zero is believed only at this many digits (about 1330 bits): below that, sigmoid(1e-300)
# - 1/2 is 0 because exp(1e-300) rounds to 1; beyond it, what is left of unit-sized operands
# is under 2**-1100, zero to float64 as well.
ZERO_DPS = 400


def _agree(a, b, dps):
    if mpmath.isnan(a) or mpmath.isnan(b):
        return mpmath.isnan(a) and mpmath.isnan(b)
    if a == 0 and b == 0:  # an exact zero, or everything cancelled at both precisions
        return dps >= ZERO_DPS
    if a == b:
        return True
    if mpmath.isinf(a) or mpmath.isinf(b):
        return False
    return abs(a - b) <= max(AGREE * abs(b), NEGLIGIBLE)


def _converged(compute):
    """compute() (a number or a list) at DPS, 2 DPS, ... until two precisions agree."""
    dps = DPS
    with mpmath.workdps(dps):
        previous = compute()
    while True:
        dps *= 2
        with mpmath.workdps(dps):
            current = compute()
        pairs = zip(previous, current) if isinstance(current, list) else [(previous, current)]
        if all(_agree(a, b, dps) for a, b in pairs):
            return current
        if dps >= MAX_DPS:
            raise ArithmeticError(f"oracle did not converge at {dps} digits")
        previous = current


def _f(x):
    """A float64 input as an exact mpmath number."""
    return mpf(float(x))


def _sub(a, b):
    """a - b without rounding."""
    return mpmath.fsub(a, b, exact=True)


def _exact_sum(values):
    total = mpf(0)
    for v in values:
        total = mpmath.fadd(total, v, exact=True)
    return total


def _times(weight, value):
    """weight * value with 0 * inf = 0: a zero weight ignores an infinite term."""
    return mpf(0) if weight == 0 else weight * value


def _xlogy(x, y):
    """x * log(y) with 0 * log(anything) = 0 (mpmath's log is accurate for exact y near 1)."""
    if x == 0:
        return mpf(0)
    return x * (mpf("-inf") if y == 0 else mpmath.log(y))


def _log_sigmoid(z):
    """log(sigmoid(z)) = -log1p(exp(-z)), in the form without cancellation for z's sign."""
    if z >= 0:
        return -mpmath.log1p(mpmath.exp(-z))
    return z - mpmath.log1p(mpmath.exp(z))


def _sigmoid(z):
    if z >= 0:
        return 1 / (1 + mpmath.exp(-z))
    e = mpmath.exp(z)
    return e / (1 + e)


def _sigmoid_minus(z, y):
    """sigmoid(z) - y, as (1 - y) - sigmoid(-z) for z >= 0 so that saturation cancels nothing."""
    if z >= 0:
        return _sub(1, y) - _sigmoid(-z)
    return _sigmoid(z) - y


def _softmax_parts(z_row):
    """(top, gaps, e, rest): the first argmax, z_j - max z exactly, exp(gap_j), and the sum
    of exp(gap_k) over every class but top, so that logsumexp(z) = max z + log1p(rest).
    None when the row has no finite maximum."""
    z = [_f(v) for v in z_row]
    if any(mpmath.isnan(v) for v in z):
        return None
    top = max(range(len(z)), key=lambda j: z[j])
    if not mpmath.isfinite(z[top]):
        return None
    gaps = [_sub(v, z[top]) for v in z]
    e = [mpmath.exp(g) for g in gaps]
    rest = mpmath.fsum(e[:top] + e[top + 1:])
    return top, gaps, e, rest


def _log_softmax(z_row):
    parts = _softmax_parts(z_row)
    if parts is None:
        return [mpmath.nan] * len(z_row)
    _, gaps, _, rest = parts
    lse = mpmath.log1p(rest)
    return [g - lse for g in gaps]


# Losses ---------------------------------------------------------------------------------


def sigmoid_cross_entropy(z, y, pos_weight=None):
    """-[q y log sigmoid(z) + (1 - y) log sigmoid(-z)], q = pos_weight (1 when absent)."""
    z, y = _f(z), _f(y)
    weight = y if pos_weight is None else mpmath.fmul(_f(pos_weight), y, exact=True)
    return _converged(lambda: -(_times(weight, _log_sigmoid(z)) + _times(_sub(1, y), _log_sigmoid(-z))))


def binary_crossentropy(p, y):
    """-[y log p + (1 - y) log(1 - p)]."""
    p, y = _f(p), _f(y)
    return _converged(lambda: -(_xlogy(y, p) + _xlogy(_sub(1, y), _sub(1, p))))


def softmax_cross_entropy(z_row, y_row):
    """-sum_c y_c log softmax(z)_c; the labels need not sum to 1."""
    y = [_f(v) for v in y_row]
    return _converged(lambda: -mpmath.fsum(_times(w, ls) for w, ls in zip(y, _log_softmax(z_row))))


def categorical_crossentropy(p_row, y_row):
    """-sum_c y_c log p_c, the probabilities taken as given."""
    pairs = [(_f(p), _f(y)) for p, y in zip(p_row, y_row)]
    return _converged(lambda: -mpmath.fsum(_xlogy(y, p) for p, y in pairs))


def sparse_softmax_cross_entropy(z_row, label):
    """-log softmax(z)[label] = logsumexp(z) - z[label]."""
    return _converged(lambda: -_log_softmax(z_row)[int(label)])


def sparse_categorical_crossentropy(p_row, label):
    """-log p[label]."""
    p = _f(p_row[int(label)])
    return _converged(lambda: -_xlogy(1, p))


def mean_squared_error(a, y, half=False):
    """(a - y)^2, or 1/2 (a - y)^2 with half."""
    d = _sub(_f(a), _f(y))
    return mpmath.fmul(0.5 if half else 1, mpmath.fmul(d, d, exact=True), exact=True)


# Gradients with respect to the prediction ------------------------------------------------


def sigmoid_cross_entropy_grad(z, y, pos_weight=None):
    """d/dz = sigmoid(z) - y, as (1 - y) - sigmoid(-z) for z >= 0; with a positive weight q,
    (1 - y) sigmoid(z) - q y sigmoid(-z)."""
    z, y = _f(z), _f(y)
    if pos_weight is None:
        return _converged(lambda: _sigmoid_minus(z, y))
    weight = mpmath.fmul(_f(pos_weight), y, exact=True)
    return _converged(lambda: _times(_sub(1, y), _sigmoid(z)) - _times(weight, _sigmoid(-z)))


def softmax_cross_entropy_grad(z_row, y_row):
    """d/dz_j = softmax(z)_j sum(y) - y_j; at the top class softmax = 1 - rest / (1 + rest)."""
    y = [_f(v) for v in y_row]
    total = _exact_sum(y)

    def compute():
        parts = _softmax_parts(z_row)
        if parts is None:
            return [mpmath.nan] * len(y)
        top, _, e, rest = parts
        grad = [e[j] / (1 + rest) * total - y[j] for j in range(len(y))]
        grad[top] = _sub(total, y[top]) - total * rest / (1 + rest)
        return grad

    return _converged(compute)


def sparse_softmax_cross_entropy_grad(z_row, label):
    """d/dz_j = softmax(z)_j - [j == label]."""
    label = int(label)

    def compute():
        parts = _softmax_parts(z_row)
        if parts is None:
            return [mpmath.nan] * len(z_row)
        top, _, e, rest = parts
        grad = [v / (1 + rest) for v in e]
        grad[label] = -rest / (1 + rest) if label == top else grad[label] - 1
        return grad

    return _converged(compute)


def mean_squared_error_grad(a, y, half=False):
    """d/da = 2 (a - y), or (a - y) with half."""
    return mpmath.fmul(1 if half else 2, _sub(_f(a), _f(y)), exact=True)


def sigmoid_half_squared_error_grad(z, y):
    """d/dz of 1/2 (sigmoid(z) - y)^2 = (a - y) a (1 - a), a = sigmoid(z), 1 - a = sigmoid(-z)."""
    z, y = _f(z), _f(y)
    return _converged(lambda: _sigmoid_minus(z, y) * _sigmoid(z) * _sigmoid(-z))
