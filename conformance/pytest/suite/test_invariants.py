"""Properties that need no reference, checked on each framework of this process.

They catch what a shared mistake in the reference would hide: softmax cross-entropy does not
change when every logit of a row moves by the same amount; the sparse form equals the one-hot
form; mean reduction is sum / N; the fused function equals the framework's own composition of
log_softmax and nll_loss (or a gather), loss and gradient, mode by mode.
"""
import numpy as np
import pytest

from conformance import adapters
from conformance.core import manifest as divergences
from conformance.core import tolerance as tol
from conformance.adapters.api import NotOffered
from conformance.core.compare import compare
from conformance.pytest.plugin import frameworks_of_this_run, runner_of_this_run
from reference import registry

RNG = np.random.default_rng(7)
LOGITS = np.round(RNG.normal(0, 3, (16, 10)) * 1024) / 1024  # on a grid: shifts below stay exact
LABELS = RNG.integers(0, 10, 16)
ONEHOT = np.eye(10)[LABELS]
DTYPES = ("float32", "float64")


def adapter_or_skip(framework):
    try:
        return adapters.load(framework)
    except adapters.AdapterError as exc:
        pytest.fail(str(exc), pytrace=False)
    except adapters.Unavailable as exc:
        pytest.skip(f"[not-installed] {exc}")


def values(result):
    """A mode's values; the exception, where that mode raised (every mode runs, and one that
    raises carries its exception: an invariant does not hold on a raise)."""
    if result.raised is not None:
        raise result.raised
    return result.values


def loss(adapter, op, x, y, dtype, **options):
    try:
        adapter.check_offered(op, dtype, "cpu", "loss")
        return values(adapter.loss(op, x, y, options, dtype, "cpu"))
    except NotOffered as exc:
        pytest.skip(f"[not-offered] {exc}")


@pytest.fixture
def agree(request, framework):
    """assert a and b agree within the tolerance the reference allows at this input, unless a
    manifest entry (kind: invariant, case: invariant-<test name>) says this framework does not."""
    runner = runner_of_this_run(request.config)
    invariant = "invariant-" + request.node.originalname.removeprefix("test_").replace("_", "-")

    def check(a, b, op, inputs, dtype, options=None, quantity="loss"):
        if quantity == "loss":
            scale = registry.evaluate_scale(op, "exact", inputs, options or {}, dtype)
        else:
            scale = registry.evaluate_grad(op, "exact", inputs, options or {}, dtype)[1]
        verdict = compare(np.asarray(a, np.float64), b, 2 * scale, dtype, tol.for_check(dtype))
        fields = {"case": invariant, "op": op, "quantity": quantity, "framework": framework, "dtype": dtype,
                  "device": "cpu", "kind": "invariant"}
        entry = divergences.find_fields(runner.manifest, fields, adapters.load(framework).package_versions())
        if entry is None:
            assert verdict.passed, verdict
            return
        runner.matched_entries.add(entry.id)
        if verdict.passed:
            pytest.fail(f"{entry.id} no longer diverges (strict xfail)", pytrace=False)
        pytest.xfail(f"{entry.id}: {entry.reason}")

    return check


def pytest_generate_tests(metafunc):
    if "framework" in metafunc.fixturenames:
        frameworks = frameworks_of_this_run(metafunc.config)
        metafunc.parametrize("framework", frameworks, ids=frameworks)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shift", [-7.5, 64.0])
def test_softmax_cross_entropy_is_shift_invariant(framework, dtype, shift, agree):
    adapter = adapter_or_skip(framework)
    x = LOGITS.astype(dtype)
    shifted = (LOGITS + shift).astype(dtype)  # shifts exactly representable at this magnitude
    assert np.array_equal(shifted.astype(np.float64) - shift, x.astype(np.float64))
    a = loss(adapter, "sparse_softmax_cross_entropy", x, LABELS, dtype)
    b = loss(adapter, "sparse_softmax_cross_entropy", shifted, LABELS, dtype)
    agree(a, b, "sparse_softmax_cross_entropy", {"logits": x.astype(np.float64), "labels": LABELS}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_equals_one_hot(framework, dtype, agree):
    adapter = adapter_or_skip(framework)
    x = LOGITS.astype(dtype)
    sparse = loss(adapter, "sparse_softmax_cross_entropy", x, LABELS, dtype)
    dense = loss(adapter, "softmax_cross_entropy", x, ONEHOT.astype(dtype), dtype)
    agree(sparse, dense, "sparse_softmax_cross_entropy", {"logits": x.astype(np.float64), "labels": LABELS}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_is_sum_over_n(framework, dtype, agree):
    adapter = adapter_or_skip(framework)
    x = LOGITS.astype(dtype)
    mean = loss(adapter, "sparse_softmax_cross_entropy", x, LABELS, dtype, reduction="mean")
    total = loss(adapter, "sparse_softmax_cross_entropy", x, LABELS, dtype, reduction="sum")
    inputs = {"logits": x.astype(np.float64), "labels": LABELS}
    agree(np.asarray(total) / len(LABELS), mean, "sparse_softmax_cross_entropy", inputs, dtype, {"reduction": "mean"})


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_mode_along_a_common_shift_is_zero(framework, dtype, agree):
    """Softmax cross-entropy does not move when every logit of a row moves together: its
    directional derivative along ones is 0 (a softmax JVP that does not sum to zero fails)."""
    adapter = adapter_or_skip(framework)
    x = LOGITS.astype(dtype)
    try:
        adapter.check_offered("sparse_softmax_cross_entropy", dtype, "cpu", "jvp")
        tangent = values(adapter.jvp("sparse_softmax_cross_entropy", x, LABELS, {}, dtype, "cpu",
                                     direction=np.ones(LOGITS.shape)))
    except NotOffered as exc:
        pytest.skip(f"[not-offered] {exc}")
    agree(np.zeros(len(LABELS)), tangent, "sparse_softmax_cross_entropy",
          {"logits": x.astype(np.float64), "labels": LABELS}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_and_one_hot_gradients_agree_in_every_mode(framework, dtype, agree):
    """The gradient of the sparse form equals the one-hot form's, mode by mode (optax #1335:
    the integer-label gradient drifted from the dense one)."""
    adapter = adapter_or_skip(framework)
    x = LOGITS.astype(dtype)
    try:
        for op in ("sparse_softmax_cross_entropy", "softmax_cross_entropy"):
            adapter.check_offered(op, dtype, "cpu", "grad_logits")
        sparse = adapter.grad("sparse_softmax_cross_entropy", x, LABELS, {}, dtype, "cpu").all_modes()
        dense = adapter.grad("softmax_cross_entropy", x, ONEHOT.astype(dtype), {}, dtype, "cpu").all_modes()
    except NotOffered as exc:
        pytest.skip(f"[not-offered] {exc}")
    inputs = {"logits": x.astype(np.float64), "labels": LABELS}
    for s, d in zip(sparse, dense):
        assert s.mode == d.mode
        agree(values(s), values(d), "sparse_softmax_cross_entropy", inputs, dtype, quantity="grad_logits")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("quantity", ["loss", "grad_logits"])
@pytest.mark.parametrize("op", ["sparse_softmax_cross_entropy", "softmax_cross_entropy"])
def test_fused_equals_log_softmax_composition_in_every_mode(framework, op, quantity, dtype, agree):
    """The fused cross-entropy equals log_softmax followed by nll_loss (or a gather), and so
    do their gradients, in every mode the framework runs (TF's fused kernel and its backprop,
    optax's custom formula, torch's fused cross_entropy against their own building blocks)."""
    adapter = adapter_or_skip(framework)
    composed = adapter.composed()
    if composed is None:
        pytest.skip(f"[not-offered] {framework} declares no log_softmax composition")
    x = LOGITS.astype(dtype)
    labels = LABELS if op == "sparse_softmax_cross_entropy" else ONEHOT.astype(dtype)
    try:
        for each in (adapter, composed):
            each.check_offered(op, dtype, "cpu", quantity)
        compute = (lambda a: a.loss(op, x, labels, {}, dtype, "cpu")) if quantity == "loss" else \
            (lambda a: a.grad(op, x, labels, {}, dtype, "cpu"))
        fused, built = compute(adapter).all_modes(), compute(composed).all_modes()
    except NotOffered as exc:
        pytest.skip(f"[not-offered] {exc}")
    inputs = {"logits": x.astype(np.float64), "labels": labels.astype(np.float64) if labels.dtype.kind == "f"
              else labels}
    assert [f.mode for f in fused] == [b.mode for b in built]
    for f, b in zip(fused, built):
        agree(values(b), values(f), op, inputs, dtype, quantity=quantity)
