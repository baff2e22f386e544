"""The registry: ops declared by keyword, options they do not take refused by name, the
exact variant's functions taking exactly the options the declaration derives for them, and
every function receiving only those it takes."""
import mpmath
import numpy as np
import pytest

from reference import registry
from reference.declaration import NotDescribed, Op, Variant
from reference.option_declaration import taking
from reference.options import AXIS, LABEL_SMOOTHING, REDUCTION, WEIGHT
from reference.registry import OPS, SHARED_OPTIONS, evaluate_grad, evaluate_loss, evaluate_scale

SIGMOID_INPUTS = {"logits": np.array([0.5, -1.0]), "labels": np.array([1.0, 0.0])}
SPARSE_INPUTS = {"probs": np.array([[0.2, 0.8], [0.6, 0.4]]), "labels": np.array([1, 0])}


def test_the_canonical_ops():
    assert {name: (op.prediction, op.integer_labels, op.class_axis) for name, op in OPS.items()} == {
        "sigmoid_cross_entropy": ("logits", False, False),
        "binary_crossentropy": ("probs", False, False),
        "softmax_cross_entropy": ("logits", False, True),
        "categorical_crossentropy": ("probs", False, True),
        "sparse_softmax_cross_entropy": ("logits", True, True),
        "sparse_categorical_crossentropy": ("probs", True, True),
        "mean_squared_error": ("predictions", False, False),
        "linear_cross_entropy": ("hidden", True, False),
    }
    assert OPS["linear_cross_entropy"].inputs == ("hidden", "linear_weight", "linear_bias", "labels")
    assert all(op.name == name and "exact" in op.variants for name, op in OPS.items())
    assert registry.variant_names("binary_crossentropy") == (
        "exact", "keras3_clip", "keras2_logit", "tf_keras_eps_log", "torch_clamp_log")


def test_function_options_are_derived_from_the_declaration():
    assert {name: op.function_options for name, op in OPS.items()} == {
        "sigmoid_cross_entropy": ("pos_weight",), "binary_crossentropy": (),
        "softmax_cross_entropy": ("axis", "z_loss", "softcap"), "categorical_crossentropy": ("axis",),
        "sparse_softmax_cross_entropy": ("axis", "z_loss", "softcap"), "sparse_categorical_crossentropy": ("axis",),
        "mean_squared_error": ("half",), "linear_cross_entropy": ("z_loss", "softcap"),
    }


@pytest.mark.parametrize("evaluate", [evaluate_loss, evaluate_scale, evaluate_grad])
def test_an_option_the_op_does_not_take_is_refused_by_name(evaluate):
    with pytest.raises(ValueError, match=r"sigmoid_cross_entropy does not take the option 'weight'"):
        evaluate("sigmoid_cross_entropy", "exact", SIGMOID_INPUTS, {"weight": [1.0, 2.0]}, "float64")
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy does not take the option 'label_smoothing'"):
        evaluate("sparse_categorical_crossentropy", "exact", SPARSE_INPUTS, {"label_smoothing": 0.1}, "float64")
    with pytest.raises(ValueError, match=r"mean_squared_error does not take the option 'axis'"):
        evaluate("mean_squared_error", "exact", {"predictions": [1.0], "labels": [0.0]}, {"axis": 0}, "float64")


def test_an_unset_option_and_the_shared_ones_are_accepted():
    plain = evaluate_loss("sigmoid_cross_entropy", "exact", SIGMOID_INPUTS, {}, "float64")
    unset = evaluate_loss("sigmoid_cross_entropy", "exact", SIGMOID_INPUTS, {"weight": None, "axis": None}, "float64")
    assert np.array_equal(plain, unset)
    assert set(SHARED_OPTIONS) == {"sample_weight"}
    weighted = evaluate_loss("sigmoid_cross_entropy", "exact", SIGMOID_INPUTS, {"sample_weight": [2.0, 0.0]}, "float64")
    assert np.array_equal(weighted, [2 * plain[0], 0.0])


def test_unknown_op_variant_and_quantity_are_refused():
    with pytest.raises(ValueError, match="unknown op 'hinge'"):
        evaluate_loss("hinge", "exact", SIGMOID_INPUTS, {}, "float64")
    with pytest.raises(ValueError, match="sigmoid_cross_entropy has no variant 'keras3_clip'"):
        evaluate_loss("sigmoid_cross_entropy", "keras3_clip", SIGMOID_INPUTS, {}, "float64")
    with pytest.raises(ValueError, match="no gradient with respect to the labels"):
        evaluate_grad("sparse_categorical_crossentropy", "exact", SPARSE_INPUTS, {}, "float64", wrt="labels")
    with pytest.raises(ValueError, match="wrt must be"):
        evaluate_grad("sigmoid_cross_entropy", "exact", SIGMOID_INPUTS, {}, "float64", wrt="logits")


def test_a_variant_that_cannot_model_an_option_refuses_it():
    with pytest.raises(ValueError, match="keras_numpy.*pos_weight"):
        evaluate_loss("sigmoid_cross_entropy", "keras_numpy", SIGMOID_INPUTS, {"pos_weight": 2.0}, "float32")


def _loss(z, y, dtype, axis):
    return z


def _scale(z, y, loss, dtype, axis):
    return z


def _declare(**changes):
    declaration = dict(name="toy", prediction="logits", integer_labels=False, class_axis=True,
                       options=taking(REDUCTION, AXIS),
                       variants={"exact": Variant(loss=_loss, scale=_scale)})
    return Op(**{**declaration, **changes})


def test_declarations_are_checked():
    assert _declare().function_options == ("axis",)
    with pytest.raises(ValueError, match="takes the options"):  # a function without the op's option
        _declare(variants={"exact": Variant(loss=lambda z, y, dtype: z, scale=_scale)})
    with pytest.raises(ValueError, match="takes the options"):  # a function option the op does not declare
        _declare(options=taking(REDUCTION, AXIS), variants={"exact": Variant(
            loss=lambda z, y, dtype, axis, half: z, scale=_scale)})
    with pytest.raises(ValueError, match="'exact' variant"):
        _declare(variants={"fast": Variant(loss=_loss, scale=_scale)})
    with pytest.raises(ValueError, match="prediction must be"):
        _declare(prediction="embeddings")
    with pytest.raises(ValueError, match="only an op with a head takes further tensors"):
        _declare(tensors=("linear_weight",))
    with pytest.raises(ValueError, match="an op with a head declares no variants"):
        _declare(head="softmax_cross_entropy", integer_labels=True)
    with pytest.raises(ValueError, match="class axis"):
        _declare(class_axis=False)
    with pytest.raises(ValueError, match="dense_form"):
        _declare(integer_labels=True, options=taking(REDUCTION, AXIS, WEIGHT))
    with pytest.raises(TypeError, match="Option declarations"):  # a default where a declaration belongs
        _declare(options={"reduction": "none", "axis": -1})
    with pytest.raises(ValueError, match="listed twice"):
        _declare(options=taking(REDUCTION, AXIS, AXIS))
    with pytest.raises(TypeError):  # keywords only
        Variant(_loss, _scale)


def test_registration_checks_dense_forms():
    sparse = _declare(name="sparse_toy", integer_labels=True, dense_form="missing",
                      options=taking(REDUCTION, AXIS, LABEL_SMOOTHING))

    class Family:
        DECLARATIONS = (sparse,)

    with pytest.raises(ValueError, match="dense form 'missing'"):
        registry._register([Family])
    assert OPS["sparse_softmax_cross_entropy"].dense_form == "softmax_cross_entropy"


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_megatron_smoothing_is_megatrons_formula(eps):
    """Megatron-LM's vocab-parallel cross-entropy: with s = eps K / (K - 1), (1 - s) nll - s
    mean(log_softmax); the label keeps 1 - eps and each other class eps / (K - 1)."""
    rng = np.random.default_rng(7)
    z, labels = rng.normal(0.0, 2.0, (5, 6)), rng.integers(0, 6, 5)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    s = eps * 6 / 5
    nll = -log_p[np.arange(5), labels]
    megatron = (1 - s) * nll - s * np.mean(log_p, axis=-1)
    options = {"label_smoothing": eps}
    got = evaluate_loss("sparse_softmax_cross_entropy", "megatron_smoothing", {"logits": z, "labels": labels},
                        options, "float64")
    np.testing.assert_allclose(got, megatron, rtol=1e-14)
    uniform = evaluate_loss("sparse_softmax_cross_entropy", "exact", {"logits": z, "labels": labels}, options,
                            "float64")
    assert np.all(np.abs(got - uniform) > 1e-3)  # the conventions differ
    dense = np.full((5, 6), eps / 5)
    dense[np.arange(5), labels] = 1 - eps
    np.testing.assert_allclose(evaluate_loss("softmax_cross_entropy", "exact", {"logits": z, "labels": dense}, {},
                                             "float64"), megatron, rtol=1e-14)


@pytest.mark.parametrize("variant, exact", [
    ("torch_clamp_log", lambda p: -mpmath.log1p(-p)),
    ("tf_keras_eps_log", lambda p: -mpmath.log1p(mpmath.mpf(1e-7) - p)),  # epsilon 1e-7 inside the log
])
def test_a_confident_correct_negative_costs_its_exact_loss_in_every_variant(variant, exact):
    """p = 1e-7 with label 0 costs about p: a variant that rounds 1 - p in float64 before the
    log is 5e-10 off in relative terms, millions of float64 ULP (what a plain log(1 - p) loses)."""
    p = np.array([2e-7, 1e-6, 0.25])  # inside Keras' clip [1e-7, 1 - 1e-7]
    loss = registry.evaluate_loss("binary_crossentropy", variant, {"probs": p, "labels": np.zeros(3)}, {}, "float64")
    for got, q in zip(loss, p):
        want = float(exact(mpmath.mpf(float(q))))
        assert abs(got - want) <= 2 * np.spacing(want), (q, got, want)


def test_a_function_receives_only_the_options_it_takes():
    """A variant other than the exact one may leave out an option it does not describe: it is
    called without it, and not at all where that option is given."""
    from reference.ops.softmax import SOFTCAP, Z_LOSS
    received = []

    def plain(z, y, dtype, axis):
        received.append(axis)
        return np.zeros(np.shape(z)[:-1])

    def exact(z, y, dtype, axis, z_loss):
        return np.zeros(np.shape(z)[:-1])

    def exact_scale(z, y, loss, dtype, axis, z_loss):
        return np.zeros(np.shape(z)[:-1])

    op = _declare(options=taking(REDUCTION, AXIS, Z_LOSS), variants={"exact": Variant(loss=exact, scale=exact_scale)})
    inputs = {"logits": np.zeros((2, 3)), "labels": np.full((2, 3), 1 / 3)}
    registry.OPS["toy"] = op
    try:
        plain_variant = Variant(loss=plain, scale=lambda z, y, loss, dtype: loss)
        evaluate_loss("toy", plain_variant, inputs, {"z_loss": 0.0}, "float64")  # its default: not given
        assert received == [-1]
        with pytest.raises(NotDescribed, match="does not take the option z_loss"):
            evaluate_loss("toy", plain_variant, inputs, {"z_loss": 0.5}, "float64")
        assert received == [-1]
    finally:
        del registry.OPS["toy"]
    with pytest.raises(ValueError, match="exact variant takes every one"):
        _declare(options=taking(REDUCTION, AXIS, SOFTCAP))  # the exact variant leaves out softcap
