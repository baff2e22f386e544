"""The linear_cross_entropy reference (reference/linear.py): its values against an mpmath
evaluation of the exact logits and loss, and its conditioning against a float32 evaluation as
a framework does it (a float32 matrix product, then the loss in float32), which must lie
inside the tolerance it gives, and a wrong result outside."""
import mpmath
import numpy as np
import pytest
from mpmath import mpf

from reference import linear
from reference.dtypes import eps

COND, ULP = 4.0, 4.0  # conformance/data/tolerances.yaml, every dtype


def inputs(n=3, h=5, v=7, seed=0, offset=0.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(0.0, 1.0, (n, h)).astype(dtype).astype(np.float64)
    weight = (rng.normal(0.0, 2.0 / np.sqrt(h), (v, h)) + offset).astype(dtype).astype(np.float64)
    bias = rng.normal(0.0, 0.5, v).astype(dtype).astype(np.float64)
    labels = rng.integers(0, v, n)
    return hidden, weight, bias, labels


def exact(hidden, weight, bias, labels, ignore_index=None, mean=False):
    """Loss per row (or their mean over counted rows) and the three gradients, at 60 digits."""
    with mpmath.workdps(60):
        n, v = hidden.shape[0], weight.shape[0]
        z = [[mpmath.fsum(mpf(a) * mpf(b) for a, b in zip(hidden[i], weight[c])) + mpf(bias[c]) for c in range(v)]
             for i in range(n)]
        counted = [ignore_index is None or labels[i] != ignore_index for i in range(n)]
        factor = mpf(1) / sum(counted) if mean else mpf(1)
        losses, g = [], []
        for i in range(n):
            lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in z[i]))
            if not counted[i]:
                losses.append(mpf(0))
                g.append([mpf(0)] * v)
                continue
            losses.append(lse - z[i][labels[i]])
            g.append([factor * (mpmath.exp(z[i][c] - lse) - (1 if c == labels[i] else 0)) for c in range(v)])
        loss = [float(x) for x in losses] if not mean else float(mpmath.fsum(losses) * factor)
        grad_hidden = [[float(mpmath.fsum(g[i][c] * mpf(weight[c, k]) for c in range(v)))
                        for k in range(hidden.shape[1])] for i in range(n)]
        grad_weight = [[float(mpmath.fsum(g[i][c] * mpf(hidden[i, k]) for i in range(n)))
                        for k in range(hidden.shape[1])] for c in range(v)]
        grad_bias = [float(mpmath.fsum(g[i][c] for i in range(n))) for c in range(v)]
    return np.array(loss), np.array(grad_hidden), np.array(grad_weight), np.array(grad_bias)


@pytest.mark.parametrize("options", [{}, {"reduction": "mean"}, {"reduction": "mean", "ignore_index": 2}])
def test_the_reference_is_the_exact_value_to_float64(options):
    hidden, weight, bias, labels = inputs()
    labels[0] = 2
    got = linear.evaluate(hidden, weight, bias, labels, options, "float64")
    want = exact(hidden, weight, bias, labels, options.get("ignore_index"), options.get("reduction") == "mean")
    for value, expected in zip((got.loss, got.grad_hidden, got.grad_weight, got.grad_bias), want):
        np.testing.assert_allclose(value, expected, rtol=2.0 ** -48, atol=2.0 ** -60)


def float32_framework(hidden, weight, bias, labels):
    """What a float32 framework computes: the logits by a float32 matrix product, then the
    loss and its gradients in float32 (mean over the rows)."""
    h32, w32, b32 = (a.astype(np.float32) for a in (hidden, weight, bias))
    z = h32 @ w32.T + b32
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = np.mean((np.log(s)[:, 0] - (z - m)[rows, labels]).astype(np.float32))
    g = e / s
    g[rows, labels] -= 1
    g /= np.float32(len(labels))
    return loss, g @ w32, g.T @ h32, g.sum(axis=0)


def bound(expected, scale, dtype):
    spacing = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    return ULP * spacing + COND * eps(dtype) * scale


@pytest.mark.parametrize("offset, wrong_by", [(0.0, 1e-4), (3.0, 1e-2)])
def test_a_float32_framework_lies_inside_the_tolerance_and_a_wrong_one_outside(offset, wrong_by):
    """A common offset of the weights is no common offset of the computed logits: each dot
    product rounds its own |h| |w| (here about 1,500 x eps), so it widens the tolerance, and
    cancels in the gradient with respect to hidden; a 1e-2 error is still refused."""
    hidden, weight, bias, labels = inputs(n=16, h=64, v=100, seed=1, offset=offset)
    ref = linear.evaluate(hidden, weight, bias, labels, {"reduction": "mean"}, "float32")
    expected = (ref.loss, ref.grad_hidden, ref.grad_weight, ref.grad_bias)
    scales = (ref.loss_scale, ref.grad_hidden_scale, ref.grad_weight_scale, ref.grad_bias_scale)
    for name, actual, want, scale in zip(("loss", "hidden", "weight", "bias"), float32_framework(
            hidden, weight, bias, labels), expected, scales):
        limit = bound(want, scale, "float32")
        assert np.all(np.abs(np.asarray(actual, np.float64) - want) <= limit), name
        wrong = want * (1 + wrong_by) + wrong_by * np.max(np.abs(want))
        assert np.any(np.abs(wrong - want) > limit), f"{name}: the tolerance accepts a {wrong_by} error"


def test_large_cases_are_summed_in_float64_and_refused_in_float64(monkeypatch):
    monkeypatch.setattr(linear, "DOUBLE_DOUBLE_LIMIT", 10)
    hidden, weight, bias, labels = inputs()
    small = linear.evaluate(hidden, weight, bias, labels, {}, "float32")
    np.testing.assert_allclose(small.loss, exact(hidden, weight, bias, labels)[0], rtol=2.0 ** -45)
    with pytest.raises(ValueError, match="in float64 needs at most 10 products"):
        linear.evaluate(hidden, weight, bias, labels, {}, "float64")
    with pytest.raises(ValueError, match="does not take the option"):
        linear.evaluate(hidden, weight, bias, labels, {"axis": 0}, "float32")


FINITE_DIFFERENCE_OPTIONS = [
    {}, {"reduction": "sum"}, {"reduction": "mean", "ignore_index": 1}, {"label_smoothing": 0.2},
    {"reduction": "mean", "weight": [1.0, 2.0, 0.5, 1.5, 3.0, 1.0, 0.25]}, {"z_loss": 0.3},
    {"softcap": 2.0}, {"sample_weight": np.array([0.5, -1.5, 2.0])},
]


@pytest.mark.parametrize("options", FINITE_DIFFERENCE_OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_the_gradients_are_those_of_the_loss_under_every_option(options):
    """Each gradient against central differences of the summed loss, input by input."""
    hidden, weight, bias, labels = inputs(seed=3)
    got = linear.evaluate(hidden, weight, bias, labels, options, "float64")
    arrays = {"hidden": hidden, "weight": weight, "bias": bias}

    def total(name, changed):
        given = {**arrays, name: changed}
        return float(np.sum(linear.evaluate(given["hidden"], given["weight"], given["bias"], labels, options,
                                            "float64").loss))

    for name, gradient in (("hidden", got.grad_hidden), ("weight", got.grad_weight), ("bias", got.grad_bias)):
        numeric = np.zeros_like(arrays[name])
        for index in np.ndindex(arrays[name].shape):
            step = 1e-6 * max(1.0, abs(arrays[name][index]))
            up, down = arrays[name].copy(), arrays[name].copy()
            up[index] += step
            down[index] -= step
            numeric[index] = (total(name, up) - total(name, down)) / (2 * step)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_the_linear_head_takes_its_heads_smoothing_convention():
    """megatron_smoothing on a head of V classes is the uniform convention with eps V / (V - 1)."""
    hidden, weight, bias, labels = inputs(seed=5)
    v = weight.shape[0]
    megatron = linear.evaluate(hidden, weight, bias, labels, {"label_smoothing": 0.2}, "float64",
                               "megatron_smoothing")
    uniform = linear.evaluate(hidden, weight, bias, labels, {"label_smoothing": 0.2 * v / (v - 1)}, "float64")
    np.testing.assert_allclose(megatron.loss, uniform.loss, rtol=1e-15)
    np.testing.assert_allclose(megatron.grad_weight, uniform.grad_weight, rtol=1e-15)
