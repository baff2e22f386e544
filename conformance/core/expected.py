"""What a check expects: the inputs as the dtype holds them, the reference's value and
conditioning scale for each quantity (loss, gradient, vector-Jacobian and forward-mode
products with their seeded cotangents and directions) or a pinned number with its printed
precision, and what a behaviour model of the manifest computes in their place."""
import numpy as np

from conformance.cases.pinned import pinned_shape
from conformance.core import behaviour_models, checks, conditions
from conformance.core import tolerance as tol
from conformance.core.compare import compare
from reference import registry
from reference.dtypes import numpy_dtype, round_to
from reference.numerics.conditioning import summation


def cast_inputs(case, dtype):
    """The inputs as the dtype under test holds them (integer labels untouched)."""
    cast = {}
    for name, array in case.inputs.items():
        cast[name] = array if array.dtype.kind in "iu" else array.astype(numpy_dtype(dtype))
    return cast


def as64(cast: dict) -> dict:
    """The cast inputs as float64 arrays (integer labels untouched)."""
    return {k: v.astype(np.float64) if v.dtype.kind not in "iu" else v for k, v in cast.items()}


def reference_values(case, variant, cast, dtype, quantity):
    """(expected, scale) in float64: the variant's value and its conditioning scale."""
    wide = as64(cast)
    if quantity == "loss":  # one pass over the logits where the variant has one (the softmax ops)
        return registry.evaluate_loss_and_scale(case.op, variant, wide, case.options, dtype)
    if quantity == "jvp":
        return forward_reference(case, variant, wide, dtype)
    wrt = checks.wrt_of(quantity)
    options = case.options
    if quantity in checks.VJP_QUANTITIES:  # d sum(c * L): the cotangent weighs each loss, as a sample weight does
        c = case_cotangent(case, variant, wide, dtype)
        if c.ndim == 0:  # a reduced loss (second_backward): its scalar cotangent scales the gradient
            grad, scale = registry.evaluate_grad(case.op, variant, wide, options, dtype, wrt)
            return grad * c, scale * np.abs(c)
        options = {**options, "sample_weight": c * np.asarray(options.get("sample_weight", 1.0), np.float64)}
    return registry.evaluate_grad(case.op, variant, wide, options, dtype, wrt)


def forward_reference(case, variant, wide, dtype):
    """The directional derivative of the (reduced) loss along the seeded direction v:
    sum_j dL_i/dz_ij v_ij per loss (reduction none), or sum dL/dz v; and its scale."""
    grad, scale = registry.evaluate_grad(case.op, variant, wide, case.options, dtype, "prediction")
    v = checks.direction(case, dtype)
    terms = grad * v
    with np.errstate(invalid="ignore"):
        sizes = np.abs(scale * v)
    sizes = np.where(~np.isfinite(sizes) & (terms == 0), 0.0, sizes)  # a masked (-inf) logit adds exactly 0
    if case.options.get("reduction", "none") != "none":
        return np.asarray(np.sum(terms)), np.asarray(np.sum(sizes) + summation(terms))
    if registry.OPS[case.op].class_axis and grad.ndim:
        axis = case.options.get("axis", -1)
        return np.sum(terms, axis=axis), np.sum(sizes, axis=axis) + summation(terms, axis)
    return terms, sizes


def case_cotangent(case, variant, wide, dtype):
    """The seeded cotangent of this case's unreduced losses, in the dtype under test; a scalar
    where the case reduces them."""
    if case.options.get("reduction", "none") != "none":
        return checks.cotangent(case, dtype, ())
    shape = registry.evaluate_loss(case.op, variant, wide, {**case.options, "reduction": "none"}, dtype).shape
    return checks.cotangent(case, dtype, shape)


def probed_inputs(*arrays) -> np.ndarray:
    """The inputs (prediction, further tensors, labels) as one float64 vector: what inputs_intact
    compares (labels are integers below 2**53 or floats the dtype holds: converted exactly)."""
    return np.concatenate([np.asarray(array, np.float64).ravel() for array in arrays])


def call_options(case, cast: dict) -> dict:
    """The options an adapter is called with: the case's, and an op's further tensors (as the
    dtype under test holds them)."""
    tensors = {name: cast[name] for name in registry.OPS[case.op].tensors if name in cast}
    return {**case.options, **tensors} if tensors else case.options


def conditions_inputs(case, cast: dict) -> conditions.Inputs:
    """The check's inputs as the manifest's input predicates read them (an op with a head: its
    logits, in float64, read as the head's)."""
    wide = as64(cast)
    op = registry.OPS[case.op]
    if op.head:
        logits = wide[op.prediction] @ wide["linear_weight"].T + wide.get("linear_bias", 0.0)
        return conditions.Inputs(op.head, case.options, logits, wide["labels"])
    return conditions.Inputs(case.op, case.options, wide[op.prediction], wide["labels"])


def model_values(model: str, case, variant: str, cast: dict, dtype: str, quantity: str,
                 values=reference_values) -> np.ndarray | None:
    """What a behaviour model computes for this check's quantity, or None where it says nothing
    (values: how the framework's own variant is evaluated, the runner's cache)."""
    if quantity == "inputs_intact":  # a model of the arithmetic says nothing of writes into the inputs
        return None
    if model == behaviour_models.FRAMEWORK_VARIANT:
        return values(case, variant, cast, dtype, quantity)[0]
    if model == behaviour_models.FLOAT32:
        in32 = {k: v if v.dtype.kind in "iu" else v.astype(np.float32) for k, v in cast.items()}
        return round_to(reference_values(case, variant, in32, dtype, quantity)[0], "float32")
    spec = behaviour_models.formula(case.op, model)
    gradient = checks.GRADIENT_OF.get(quantity)
    if spec is None or (gradient and getattr(spec, "grad" if gradient == "grad_logits" else "grad_labels") is None):
        return None
    try:
        with np.errstate(all="ignore"):
            if quantity == "loss":  # the value alone: a model has no scale of its own
                return registry.evaluate_loss(case.op, spec, as64(cast), case.options, dtype)
            return reference_values(case, spec, cast, dtype, quantity)[0]
    except behaviour_models.NotModelled:
        return None


def model_shows(model: str, check, variant: str, cast: dict, expectation: tuple, values=reference_values) -> bool:
    """Whether the model's result lies outside the check's tolerance: the behaviour it models
    shows on these inputs."""
    modelled = model_values(model, check.case, variant, cast, check.dtype, check.quantity, values)
    if modelled is None:
        return False
    expected, scale, tolerance = expectation
    return not compare(expected, modelled, scale, check.dtype, tolerance, check.dtype).passed


def expected_for(check, variant, cast, values=reference_values):
    """(expected, scale, tolerance) for this check, all in float64."""
    case = check.case
    if check.pinned:
        pinned = check.pinned
        shape = pinned_shape(registry.OPS[case.op], cast, case.options, pinned.quantity)
        values = np.broadcast_to(pinned.values, shape)  # a number stands for every element
        # Around the number, what its source's precision allows: its own rtol and atol, or what
        # rounds or truncates to its digits; beyond that, the pinned ULPs an exact number allows,
        # so a framework that rounds honestly next to a value the source rounded is not held to
        # the last printed digit (Paddle's float32 sigmoid, 2 ulps from TensorFlow's doctest).
        centre, half_width, how = values, 0.0, ""
        if pinned.within() is not None:
            half_width, how = np.broadcast_to(pinned.within(), shape), "source"
        elif pinned.printed:
            (centre, half_width), how = tol.printed_interval(values, pinned.digits, pinned.decimals), "printed"
        return centre, np.zeros(shape), tol.Tolerance(tol.pinned_ulps(), 0.0, half_width,
                                                      f"{how}{pinned.printed}" if how else "")
    if check.quantity == "inputs_intact":  # nothing may have been written into them: bit for bit
        expected = probed_inputs(*(cast[name] for name in registry.OPS[case.op].inputs if name in cast))
        return expected, np.zeros_like(expected), tol.Tolerance(0.0, 0.0, 0.0, "bitwise: the inputs unchanged")
    expected, scale = values(case, variant, cast, check.dtype, check.quantity)
    return expected, scale, tol.for_check(check.dtype, check.framework, case.op, check.quantity)
