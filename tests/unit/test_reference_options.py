"""Losses with options against small hand-written NumPy formulas and hand-computed values.

The formulas here are the textbook definitions in plain float64 (np.log, np.exp), written
independently of reference/options.py: label smoothing spreads s over K classes (K = 2 for
binary losses), class weights multiply each class's term and, with integer labels, count
w[label] in a mean's denominator (PyTorch), ignore_index removes the example from the loss
and from the denominator, sample weights multiply the losses, and weighted_mean divides by
their sum.
"""
import math

import numpy as np
import pytest

from reference.registry import REDUCTIONS, evaluate_grad, evaluate_loss

LN2 = math.log(2.0)
RTOL = 1e-12


def log_softmax(z):
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def smooth(y, s, classes):
    return y * (1.0 - s) + s / classes


def reduce(losses, reduction, sample_weight=None, denominator=None):
    """none, sum, or a mean over the losses' count (or denominator); weighted_mean divides by
    the sum of the sample weights when there are some."""
    if reduction == "none":
        return losses
    total = np.sum(losses)
    if reduction == "sum":
        return total
    if reduction == "weighted_mean" and sample_weight is not None:
        return total / np.sum(sample_weight)
    return total / (losses.size if denominator is None else denominator)


def loss(op, inputs, **options):
    return evaluate_loss(op, "exact", inputs, options, "float64")


# Inputs: three examples, three classes -------------------------------------------------------

Z = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [-2.0, 1.0, 0.25]])
SOFT = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.25, 0.25, 1.0]])  # the last row sums to 1.5
P = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
LABELS = np.array([2, 0, 1])
W = np.array([0.5, 2.0, 1.5])  # class weights
S = np.array([0.5, 1.0, 3.0])  # sample weights, one per example
S_ELEMENTS = np.linspace(0.25, 2.5, 9).reshape(3, 3)  # one per element, for elementwise losses


# Hand-computed values ---------------------------------------------------------------------


def test_sparse_softmax_label_smoothing_by_hand():
    """p = (1/4, 1/2, 1/4), label 1, s = 0.3 over K = 3: y' = (0.1, 0.8, 0.1), loss 1.2 ln 2."""
    inputs = {"logits": np.log([[1.0, 2.0, 1.0]]), "labels": np.array([1])}
    assert loss("sparse_softmax_cross_entropy", inputs, label_smoothing=0.3) == pytest.approx([1.2 * LN2], rel=RTOL)


def test_sigmoid_label_smoothing_by_hand():
    """sigmoid(ln 3) = 3/4, y = 1, s = 0.2 over K = 2: y' = 0.9, loss 0.9 ln(4/3) + 0.1 ln 4."""
    inputs = {"logits": np.array([math.log(3.0)]), "labels": np.array([1.0])}
    expected = 0.9 * math.log(4 / 3) + 0.1 * math.log(4)
    assert loss("sigmoid_cross_entropy", inputs, label_smoothing=0.2) == pytest.approx([expected], rel=RTOL)


def test_binary_label_smoothing_by_hand():
    """p = 1/4, y = 0, s = 0.5 over K = 2: y' = 1/4, loss 1/4 ln 4 + 3/4 ln(4/3)."""
    inputs = {"probs": np.array([0.25]), "labels": np.array([0.0])}
    expected = 0.25 * math.log(4) + 0.75 * math.log(4 / 3)
    assert loss("binary_crossentropy", inputs, label_smoothing=0.5) == pytest.approx([expected], rel=RTOL)


def test_categorical_label_smoothing_by_hand():
    """p = (1/2, 1/4, 1/4), y = (1, 0, 0), s = 0.3 over K = 3: y' = (0.8, 0.1, 0.1): 1.2 ln 2."""
    inputs = {"probs": np.array([[0.5, 0.25, 0.25]]), "labels": np.array([[1.0, 0.0, 0.0]])}
    assert loss("categorical_crossentropy", inputs, label_smoothing=0.3) == pytest.approx([1.2 * LN2], rel=RTOL)


def test_class_weighted_mean_by_hand():
    """Row 0: p = (1/2, 1/2), label 0, ln 2; row 1: p = (1/4, 3/4), label 1, ln(4/3).
    Weights (3, 1): (3 ln 2 + ln(4/3)) / (3 + 1), PyTorch's weighted mean."""
    inputs = {"logits": np.log([[1.0, 1.0], [1.0, 3.0]]), "labels": np.array([0, 1])}
    expected = (3 * LN2 + math.log(4 / 3)) / 4
    got = loss("sparse_softmax_cross_entropy", inputs, weight=np.array([3.0, 1.0]), reduction="mean")
    assert got == pytest.approx(expected, rel=RTOL)


def test_ignore_index_leaves_the_mean_by_hand():
    """Row 0 costs ln 2, row 1 is ignored: the mean is ln 2, not ln 2 / 2."""
    inputs = {"logits": np.log([[1.0, 1.0], [1.0, 3.0]]), "labels": np.array([0, -100])}
    assert loss("sparse_softmax_cross_entropy", inputs, ignore_index=-100, reduction="mean") == pytest.approx(LN2)
    assert loss("sparse_softmax_cross_entropy", inputs, ignore_index=-100).tolist() == [pytest.approx(LN2), 0.0]


def test_sample_weights_by_hand():
    """Losses ln 2 and 2 ln 2 (z = 0, and p = 1/4 for y = 1) weighted 3 and 1."""
    inputs = {"probs": np.array([0.5, 0.25]), "labels": np.array([1.0, 1.0])}
    weights = np.array([3.0, 1.0])
    for reduction, expected in [("sum", 5 * LN2), ("mean", 2.5 * LN2), ("weighted_mean", 1.25 * LN2)]:
        got = loss("binary_crossentropy", inputs, sample_weight=weights, reduction=reduction)
        assert got == pytest.approx(expected, rel=RTOL), reduction


def test_pos_weight_by_hand():
    """z = 0: q y ln 2 + (1 - y) ln 2, q = 3: 3 ln 2 for y = 1, ln 2 for y = 0, 2 ln 2 for y = 1/2."""
    inputs = {"logits": np.zeros(3), "labels": np.array([1.0, 0.0, 0.5])}
    assert loss("sigmoid_cross_entropy", inputs, pos_weight=3.0) == pytest.approx([3 * LN2, LN2, 2 * LN2], rel=RTOL)


def test_a_pos_weight_per_class_weighs_each_column_as_its_number_would():
    rng = np.random.default_rng(9)
    inputs = {"logits": rng.normal(0.0, 4.0, (5, 3)), "labels": rng.uniform(size=(5, 3))}
    q = [0.5, 1.0, 8.0]
    by_class = loss("sigmoid_cross_entropy", inputs, pos_weight=q)
    gradient = evaluate_grad("sigmoid_cross_entropy", "exact", inputs, {"pos_weight": q}, "float64", "prediction")[0]
    label_gradient = evaluate_grad("sigmoid_cross_entropy", "exact", inputs, {"pos_weight": q}, "float64", "labels")[0]
    for c, weight in enumerate(q):
        column = {name: array[:, c] for name, array in inputs.items()}
        assert np.array_equal(by_class[:, c], loss("sigmoid_cross_entropy", column, pos_weight=weight))
        one = evaluate_grad("sigmoid_cross_entropy", "exact", column, {"pos_weight": weight}, "float64", "prediction")
        assert np.array_equal(gradient[:, c], one[0])
        one = evaluate_grad("sigmoid_cross_entropy", "exact", column, {"pos_weight": weight}, "float64", "labels")
        assert np.array_equal(label_gradient[:, c], one[0])


def test_half_squared_error_by_hand():
    inputs = {"predictions": np.array([3.0, -1.0]), "labels": np.array([1.0, 0.5])}
    assert loss("mean_squared_error", inputs, half=True).tolist() == [2.0, 1.125]
    assert loss("mean_squared_error", inputs, reduction="mean").tolist() == (4.0 + 2.25) / 2


# Formulas, every reduction ----------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sample_weight", [None, S])
def test_sparse_softmax_cross_entropy(reduction, smoothing, weighted, sample_weight):
    """-sum_c w_c y'_c log p_c, y' the smoothed one-hot label; a mean divides by sum w[label]."""
    y = smooth(np.eye(3)[LABELS], smoothing, 3)
    w = W if weighted else np.ones(3)
    s = np.ones(3) if sample_weight is None else sample_weight
    losses = -np.sum(w * y * log_softmax(Z), axis=-1) * s
    denominator = np.sum(w[LABELS]) if weighted else None
    options = {"label_smoothing": smoothing, "weight": W if weighted else None, "sample_weight": sample_weight}
    got = loss("sparse_softmax_cross_entropy", {"logits": Z, "labels": LABELS}, reduction=reduction, **options)
    np.testing.assert_allclose(got, reduce(losses, reduction, sample_weight, denominator), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_ignore_index(reduction, weighted):
    """The ignored example costs 0 and leaves the denominator (its label's weight too)."""
    labels = np.array([2, -100, 1])
    kept = np.array([True, False, True])
    w = W if weighted else np.ones(3)
    safe = np.where(kept, labels, 0)
    losses = np.where(kept, -w[safe] * log_softmax(Z)[np.arange(3), safe], 0.0)
    options = {"ignore_index": -100, "weight": W if weighted else None}
    got = loss("sparse_softmax_cross_entropy", {"logits": Z, "labels": labels}, reduction=reduction, **options)
    np.testing.assert_allclose(got, reduce(losses, reduction, denominator=np.sum(w[safe][kept])), rtol=RTOL)
    p = np.exp(log_softmax(Z))
    got = loss("sparse_categorical_crossentropy", {"probs": p, "labels": labels}, reduction=reduction,
               ignore_index=-100)
    expected = np.where(kept, -np.log(p[np.arange(3), safe]), 0.0)
    np.testing.assert_allclose(got, reduce(expected, reduction, denominator=2), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sample_weight", [None, S])
def test_softmax_cross_entropy(reduction, smoothing, weighted, sample_weight):
    """Soft labels need not sum to 1; class weights do not enter a mean's denominator."""
    w = W if weighted else np.ones(3)
    s = np.ones(3) if sample_weight is None else sample_weight
    losses = -np.sum(w * smooth(SOFT, smoothing, 3) * log_softmax(Z), axis=-1) * s
    options = {"label_smoothing": smoothing, "weight": W if weighted else None, "sample_weight": sample_weight}
    got = loss("softmax_cross_entropy", {"logits": Z, "labels": SOFT}, reduction=reduction, **options)
    np.testing.assert_allclose(got, reduce(losses, reduction, sample_weight), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("sample_weight", [None, S])
def test_categorical_crossentropy(reduction, smoothing, sample_weight):
    s = np.ones(3) if sample_weight is None else sample_weight
    losses = -np.sum(smooth(SOFT, smoothing, 3) * np.log(P), axis=-1) * s
    options = {"label_smoothing": smoothing, "sample_weight": sample_weight}
    got = loss("categorical_crossentropy", {"probs": P, "labels": SOFT}, reduction=reduction, **options)
    np.testing.assert_allclose(got, reduce(losses, reduction, sample_weight), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("pos_weight", [None, 2.5])
@pytest.mark.parametrize("sample_weight", [None, S_ELEMENTS])
def test_sigmoid_cross_entropy(reduction, smoothing, pos_weight, sample_weight):
    """-[q y' log sigmoid(z) + (1 - y') log(1 - sigmoid(z))], y' smoothed over K = 2."""
    y = smooth(SOFT / 1.5, smoothing, 2)
    q = 1.0 if pos_weight is None else pos_weight
    s = np.ones(Z.shape) if sample_weight is None else sample_weight
    losses = -(q * y * np.log(sigmoid(Z)) + (1 - y) * np.log(1 - sigmoid(Z))) * s
    options = {"label_smoothing": smoothing, "pos_weight": pos_weight, "sample_weight": sample_weight}
    got = loss("sigmoid_cross_entropy", {"logits": Z, "labels": SOFT / 1.5}, reduction=reduction, **options)
    np.testing.assert_allclose(got, reduce(losses, reduction, sample_weight), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("sample_weight", [None, S_ELEMENTS])
def test_binary_crossentropy(reduction, smoothing, sample_weight):
    y = smooth(SOFT / 1.5, smoothing, 2)
    s = np.ones(P.shape) if sample_weight is None else sample_weight
    losses = -(y * np.log(P) + (1 - y) * np.log(1 - P)) * s
    options = {"label_smoothing": smoothing, "sample_weight": sample_weight}
    got = loss("binary_crossentropy", {"probs": P, "labels": SOFT / 1.5}, reduction=reduction, **options)
    np.testing.assert_allclose(got, reduce(losses, reduction, sample_weight), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("sample_weight", [None, S_ELEMENTS])
def test_mean_squared_error(reduction, half, sample_weight):
    s = np.ones(Z.shape) if sample_weight is None else sample_weight
    losses = (0.5 if half else 1.0) * (Z - SOFT) ** 2 * s
    got = loss("mean_squared_error", {"predictions": Z, "labels": SOFT}, reduction=reduction, half=half,
               sample_weight=sample_weight)
    np.testing.assert_allclose(got, reduce(losses, reduction, sample_weight), rtol=RTOL)


def test_class_axis_first():
    """axis=0: classes along the first axis give the transposed problem's losses."""
    inputs = {"logits": Z.T, "labels": SOFT.T}
    got = loss("softmax_cross_entropy", inputs, axis=0, weight=W, label_smoothing=0.1)
    np.testing.assert_allclose(got, -np.sum(W * smooth(SOFT, 0.1, 3) * log_softmax(Z), axis=-1), rtol=RTOL)
    got = loss("sparse_softmax_cross_entropy", {"logits": Z.T, "labels": LABELS}, axis=0, label_smoothing=0.1)
    np.testing.assert_allclose(got, -np.sum(smooth(np.eye(3)[LABELS], 0.1, 3) * log_softmax(Z), axis=-1), rtol=RTOL)


def test_soft_capping_bends_the_logits_and_keeps_a_mask():
    z = np.array([[2.0, -45.0, 60.0, -np.inf], [0.5, 1.0, -np.inf, -np.inf]])
    labels = np.array([0, 1])
    capped = 30.0 * np.tanh(z / 30.0)
    with_cap = evaluate_loss("sparse_softmax_cross_entropy", "exact", {"logits": z, "labels": labels},
                             {"softcap": 30.0}, "float64")
    by_hand = evaluate_loss("sparse_softmax_cross_entropy", "exact",
                            {"logits": np.where(np.isinf(z), -np.inf, capped), "labels": labels}, {}, "float64")
    assert np.array_equal(with_cap, by_hand)  # the -inf lanes stay masked, not -30
    unmasked = evaluate_loss("sparse_softmax_cross_entropy", "exact", {"logits": capped, "labels": labels}, {},
                             "float64")
    assert unmasked[1] > with_cap[1]  # capping the mask itself would hand the padded lanes probability
    uncapped = evaluate_loss("sparse_softmax_cross_entropy", "exact", {"logits": z, "labels": labels}, {}, "float64")
    assert with_cap[0] < uncapped[0]  # the 60 bent to about 29 costs label 0 less
