"""Every op x variant x option combination: evaluate_grad (with respect to the prediction and
to the labels) against central finite differences of evaluate_loss, in float64.

Independent of the reference's own gradient formulas, so a flipped sign, a mean's gradient
not divided by its denominator, or a Keras clip mask in the wrong place fails here with no
framework installed. Inputs are small and well conditioned; the probabilities include points
far outside the Keras clip (1e-9, 1 - 1e-9), where a clipped variant's gradient must be 0.
The option values come from the op's declaration, so a new option needs values here.
"""
import itertools

import numpy as np
import pytest

from reference.registry import OPS, REDUCTIONS, SHARED_OPTIONS, evaluate_grad, evaluate_loss, has_grad

DTYPE = "float32"  # the variants' constants (epsilon, clip bounds) rounded as float32 stores them
RELATIVE_STEP = 1e-6  # inputs are of size 1
RTOL, ATOL = 1e-6, 1e-8
IGNORED = -100
CLIP_BOUNDS = (float(np.float32(1e-7)), float(np.float32(1.0 - np.float32(1e-7))))  # Keras's, at DTYPE
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.5])


def _inputs(op, ignore_index):
    """Three examples of three classes (or a 3 x 2 array for elementwise ops)."""
    rng = np.random.default_rng(sum(map(ord, op.name)))
    soft = rng.uniform(0.1, 0.9, (3, 3) if op.class_axis else (3, 2))
    soft[0, 0], soft[1, 1] = 0.0, 1.0  # hard labels, whose products are exact
    if op.prediction == "probs":
        prediction = rng.uniform(0.2, 0.8, soft.shape)
        prediction[0, 1], prediction[2, 0] = 1e-9, 1.0 - 1e-9  # far outside Keras's clip
    else:
        prediction = rng.uniform(-2.0, 2.0, soft.shape)
    if not op.integer_labels:
        return {op.prediction: prediction, "labels": soft}
    labels = np.array([1, IGNORED if ignore_index is not None else 2, 0])
    return {op.prediction: prediction, "labels": labels}


def _option_values(op, inputs):
    """Test values for each option the op declares (and the shared ones)."""
    loss_shape = inputs["labels"].shape if op.integer_labels or not op.class_axis else inputs["labels"].shape[:-1]
    known = {
        "reduction": REDUCTIONS,
        "label_smoothing": (0.0, 0.2),
        "weight": (None, CLASS_WEIGHTS),
        "ignore_index": (None, IGNORED),
        "pos_weight": (None, 2.5),
        "half": (False, True),
        "z_loss": (0.0, 0.3),
        "softcap": (None, 1.5),  # below the logits' size, so the cap bends them
        "axis": (-1,),  # axis 0 is test_class_axis_first below
        "sample_weight": (None, np.linspace(0.5, 2.0, int(np.prod(loss_shape))).reshape(loss_shape)),
    }
    names = [*op.options, *SHARED_OPTIONS]
    missing = set(names) - set(known)
    assert not missing, f"give test values for {op.name}'s options {missing}"
    return {name: known[name] for name in names}


def _combinations():
    for op in OPS.values():
        if op.head:  # the chain rule on top of its head: tests/unit/test_reference_linear.py
            continue
        names = [*op.options, *SHARED_OPTIONS]
        ignore_values = (None, IGNORED) if "ignore_index" in op.options else (None,)
        for ignore_index in ignore_values:
            values = _option_values(op, _inputs(op, ignore_index))
            values["ignore_index"] = (ignore_index,)
            for choice in itertools.product(*(values[name] for name in names)):
                options = dict(zip(names, choice))
                for variant in op.variants:
                    yield op.name, variant, options


def _id(combination):
    op, variant, options = combination
    shown = [f"{k}={'w' if isinstance(v, np.ndarray) else v}" for k, v in options.items()
             if v is not None and k != "axis"]
    return f"{op}-{variant}-{'-'.join(shown)}"


COMBINATIONS = [c for c in _combinations()
                if has_grad(c[0], c[1], "grad_logits") or has_grad(c[0], c[1], "grad_labels")]


def _largest_steps(op, name, x):
    """RELATIVE_STEP, or less where a probability would cross what it must not: Keras's clip
    bounds (beyond them the loss stops changing), and 1 where the op takes log(1 - p)."""
    steps = np.full(x.shape, RELATIVE_STEP)
    if name != "probs":
        return steps
    if not op.class_axis:
        steps = np.minimum(steps, 0.5 * (1.0 - x))
    for bound in CLIP_BOUNDS:
        steps = np.minimum(steps, 0.5 * np.abs(x - bound))
    return steps


def central_difference(objective, x, index, step, domain=(-np.inf, np.inf)):
    """Central, or one-sided at a bound of the op's domain (a target of 1 in a binary loss
    defined on [0, 1]): the side that stays inside."""
    up, down = x.copy(), x.copy()
    if x[index] + step <= domain[1]:
        up[index] += step
    if x[index] - step >= domain[0]:
        down[index] -= step
    return (objective(up) - objective(down)) / (up[index] - down[index])


def assert_matches_finite_differences(op, variant, inputs, options, wrt):
    """Element by element. The step that balances truncation against rounding depends on the
    curvature, which a clip changes (a clipped p = 1e-9 is flat, an unclipped one is log p):
    the largest step that crosses no bound first, then steps 100, 10^4 and 10^6 times smaller."""
    name = OPS[op].prediction if wrt == "prediction" else "labels"

    def objective(x):
        return float(np.sum(evaluate_loss(op, variant, {**inputs, name: x}, options, DTYPE)))

    grad, _ = evaluate_grad(op, variant, inputs, options, DTYPE, wrt)
    x = inputs[name]
    largest = _largest_steps(OPS[op], name, x)
    domain = (0.0, 1.0) if name in OPS[op].unit_interval else (-np.inf, np.inf)
    assert grad.shape == x.shape, f"{op} {variant} d/d{name}: shape {grad.shape}, not {x.shape}"
    for index in np.ndindex(x.shape):
        estimates = []
        for step in largest[index] * 10.0 ** np.array([0, -2, -4, -6]):
            with np.errstate(invalid="ignore", divide="ignore"):
                estimates.append(central_difference(objective, x, index, step, domain))
            if abs(grad[index] - estimates[-1]) <= RTOL * abs(estimates[-1]) + ATOL:
                break
        else:
            pytest.fail(f"{op} {variant} d/d{name}{list(index)} = {grad[index]!r}, finite differences give "
                        f"{estimates} (options {options})", pytrace=False)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=[_id(c) for c in COMBINATIONS])
def test_gradients_match_finite_differences(combination):
    op, variant, options = combination
    inputs = _inputs(OPS[op], options.get("ignore_index"))
    for wrt, quantity in (("prediction", "grad_logits"), ("labels", "grad_labels")):
        if has_grad(op, variant, quantity):
            assert_matches_finite_differences(op, variant, inputs, options, wrt)


CLASS_OPS = [(op.name, variant) for op in OPS.values() if op.class_axis for variant in op.variants
             if has_grad(op.name, variant, "grad_logits")]


@pytest.mark.parametrize("op,variant", CLASS_OPS)
def test_class_axis_first(op, variant):
    """axis=0: the classes along the first axis, with every option the op takes in use."""
    spec = OPS[op]
    inputs = _inputs(spec, "ignore_index" in spec.options or None)
    transposed = {spec.prediction: inputs[spec.prediction].T.copy(),
                  "labels": inputs["labels"] if spec.integer_labels else inputs["labels"].T.copy()}
    options = {"axis": 0, "reduction": "mean", "sample_weight": np.array([0.5, 1.0, 2.0])}
    options.update({k: v for k, v in {"label_smoothing": 0.2, "weight": CLASS_WEIGHTS,
                                      "ignore_index": IGNORED}.items() if k in spec.options})
    for wrt, quantity in (("prediction", "grad_logits"), ("labels", "grad_labels")):
        if has_grad(op, variant, quantity):
            assert_matches_finite_differences(op, variant, transposed, options, wrt)


def test_every_differentiable_variant_is_covered():
    covered = {(op, variant) for op, variant, _ in COMBINATIONS}
    expected = {(op.name, v) for op in OPS.values() if not op.head
                for v in op.variants if has_grad(op.name, v, "grad_logits")}
    assert expected <= covered and len(COMBINATIONS) > 200
