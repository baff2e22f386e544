"""Framework jax-sharded (plugins/xent-sharded): JAX's cross-entropy over 4 forced host devices in
a worker process, both modes (optax under jit with NamedSharding, the vocab-parallel shard_map),
against a float64 NumPy cross-entropy of the whole inputs; the worker's failures; what is not
offered. The worker starts in some 3 s and is shared by the module's tests."""
import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax-sharded needs jax (pip install 'xent-sharded[jax]')")
pytest.importorskip("optax", reason="jax-sharded needs optax (pip install 'xent-sharded[jax]')")

from conformance.adapters.api import Call, NotOffered, RankFailed  # noqa: E402
from conformance.sharded.layouts import Layout  # noqa: E402
from tests.unit import sharded_plugin  # noqa: E402

PLUGIN = sharded_plugin.PLUGIN
OP = "sparse_softmax_cross_entropy"
MODES = {"named_sharding", "shard_map"}
FLOAT32_TOLERANCE = 8 * np.finfo(np.float32).eps  # relative, on values of order 1
VOCAB2, BATCH2 = Layout("vocab", 2), Layout("batch", 2)


@pytest.fixture(scope="module")
def adapter():
    with sharded_plugin.started("xent_sharded.jax_sharded", "JaxShardedAdapter") as started:
        yield started


def cross_entropy(logits, labels, reduction="mean", smoothing=0.0, weight=None, ignore_index=None, cotangent=None):
    """Float64 losses as PyTorch defines them (targets (1 - s) one_hot + s / V, times the class
    weights; a mean over ignored targets or weights divides by the valid targets' weights), and
    the gradient of sum(losses) (or of sum(cotangent * losses)) with respect to the logits."""
    classes = logits.shape[-1]
    shifted = logits - logits.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    safe = np.where(valid, labels, 0)
    w = np.ones(classes) if weight is None else np.asarray(weight, np.float64)
    targets = (np.eye(classes)[safe] * (1 - smoothing) + smoothing / classes) * w * valid[:, None]
    losses = -(targets * log_softmax).sum(-1)
    d_losses = targets.sum(-1, keepdims=True) * np.exp(log_softmax) - targets
    if reduction == "none":
        scale = np.ones(len(labels)) if cotangent is None else np.asarray(cotangent)
        return losses, d_losses * scale[:, None]
    if reduction == "sum":
        return losses.sum(), d_losses
    divisor = (w[safe] * valid).sum() if (weight is not None or ignore_index is not None) else len(labels)
    return losses.sum() / divisor, d_losses / divisor


def assert_close(actual, expected, what, tolerance=FLOAT32_TOLERANCE):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    error = np.max(np.abs(actual - expected) / np.maximum(1.0, np.abs(expected)))
    assert error <= tolerance, f"{what}: error {error:.3g}\nactual {actual}\nexpected {expected}"


def each_mode(result):
    modes = {each.mode: each for each in result.all_modes()}
    assert set(modes) == MODES
    for mode, each in modes.items():
        assert each.raised is None, f"{mode} raised {each.raised!r}"
    return modes


@pytest.mark.parametrize("layout", [VOCAB2, BATCH2], ids=lambda layout: layout.name)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_vocab_2_batch_2_loss_and_gradient_equal_the_whole_inputs_reference(adapter, layout, reduction):
    logits, labels = sharded_plugin.float32_values((2, 2), seed=1), np.array([1, 0])
    options = {"reduction": reduction}
    want_loss, want_gradient = cross_entropy(logits, labels, reduction)

    loss = adapter.loss(OP, logits, labels, options, "float32", "cpu", layout)
    gradient = adapter.gradient(Call(OP, logits, labels, options, "float32", "cpu"), layout)

    for mode, each in each_mode(loss).items():
        assert (each.dtype, each.device) == ("float32", "cpu")
        assert_close(each.values, want_loss, f"{mode} loss at {layout.name}")
        whole_on_every_rank = layout.axis == "vocab" or reduction != "none"
        if whole_on_every_rank:  # every device's own value, and they agree bit for bit
            assert len(each.per_rank) == 2 and np.array_equal(each.per_rank[0], each.per_rank[1])
            assert np.array_equal(each.per_rank[0], each.values)
        else:
            assert each.per_rank is None, "the losses of a batch split lie on different devices"
    for mode, each in each_mode(gradient).items():
        assert_close(each.values, want_gradient, f"{mode} gradient at {layout.name}")


OPTIONED = {
    "smoothing": {"label_smoothing": 0.1},
    "smoothing, class weights, an ignored target": {"label_smoothing": 0.1, "weight": np.linspace(0.5, 2.0, 8),
                                                   "ignore_index": -100},
}


@pytest.mark.parametrize("layout", [VOCAB2, Layout("vocab", 4), BATCH2], ids=lambda layout: layout.name)
@pytest.mark.parametrize("name", OPTIONED)
def test_smoothing_class_weights_and_ignored_targets_over_the_whole_vocabulary(adapter, layout, name):
    logits, labels = sharded_plugin.float32_values((4, 8), seed=2), np.array([7, -100, 0, 5])
    given = OPTIONED[name]
    if "ignore_index" not in given:
        labels = np.abs(labels) % 8
    options = {"reduction": "mean", **given}
    want_loss, want_gradient = cross_entropy(logits, labels, "mean", given["label_smoothing"], given.get("weight"),
                                             given.get("ignore_index"))

    loss = adapter.loss(OP, logits, labels, options, "float32", "cpu", layout)
    gradient = adapter.gradient(Call(OP, logits, labels, options, "float32", "cpu"), layout)

    for mode, each in each_mode(loss).items():
        assert_close(each.values, want_loss, f"{mode} loss at {layout.name}")
    for mode, each in each_mode(gradient).items():
        assert_close(each.values, want_gradient, f"{mode} gradient at {layout.name}")


def test_the_same_options_on_another_vocabulary_and_rank_are_computed_afresh(adapter):
    options = {"reduction": "none", "label_smoothing": 0.2}
    for shape, labels in (((2, 4), np.array([3, 0])), ((2, 8), np.array([7, 1])), ((2, 2, 8), np.array([[7, 1]] * 2))):
        logits = sharded_plugin.float32_values(shape, seed=7)
        want, _ = cross_entropy(logits.reshape(-1, shape[-1]), labels.reshape(-1), "none", 0.2)
        for mode, each in each_mode(adapter.loss(OP, logits, labels, options, "float32", "cpu", VOCAB2)).items():
            assert_close(each.values, want.reshape(labels.shape), f"{mode} loss of shape {shape}")


def test_seeded_cotangent_and_a_class_axis_first(adapter):
    logits, labels = sharded_plugin.float32_values((4, 6), seed=3), np.array([5, 0, 2, 3])
    cotangent = np.array([1.0, -2.0, 0.5, 0.0])
    options = {"reduction": "none", "axis": 0}  # the classes on axis 0: the caller's layout comes back
    _, want = cross_entropy(logits, labels, "none", cotangent=cotangent)

    call = Call(OP, logits.T.copy(), labels, options, "float64", "cpu", cotangent=cotangent)
    for mode, each in each_mode(adapter.gradient(call, VOCAB2)).items():
        assert each.dtype == "float64"
        assert_close(each.values, want.T, f"{mode} vector-Jacobian product", tolerance=1e-13)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_is_computed_and_returned_in_that_dtype(adapter, dtype):
    logits = np.round(sharded_plugin.float32_values((4, 8), seed=4), 1)  # values both half types hold to a few bits
    labels = np.array([1, 7, 3, 0])
    want, _ = cross_entropy(logits, labels, "none")
    for mode, each in each_mode(adapter.loss(OP, logits, labels, {}, dtype, "cpu", VOCAB2)).items():
        assert each.dtype == dtype, f"{mode} returned {each.dtype}"
        assert_close(each.values, want, f"{mode} {dtype} loss", tolerance=2e-2)


def test_what_the_devices_cannot_take_is_not_offered(adapter):
    logits, labels = sharded_plugin.float32_values((8, 8), seed=5), np.arange(8)
    with pytest.raises(NotOffered, match="needs 8 cpu devices; JAX's worker has 4"):
        adapter.loss(OP, logits, labels, {}, "float32", "cpu", Layout("batch", 8))
    with pytest.raises(NotOffered, match="IndivisibleError.*7 positions of the vocab axis on 2 devices"):
        adapter.loss(OP, logits[:, :7], labels % 7, {}, "float32", "cpu", VOCAB2)
    with pytest.raises(NotOffered, match="split across devices only"):
        adapter.loss(OP, logits, labels, {}, "float32", "cpu")


def test_a_dead_worker_fails_the_check_and_the_next_one_starts_afresh(adapter):
    logits, labels = sharded_plugin.float32_values((2, 2), seed=6), np.array([0, 1])
    first = adapter.worker.info()["pid"]
    os.kill(first, signal.SIGKILL)
    with pytest.raises(RankFailed, match=f"JAX worker \\(pid {first}\\) died"):
        adapter.loss(OP, logits, labels, {}, "float32", "cpu", VOCAB2)

    result = adapter.loss(OP, logits, labels, {}, "float32", "cpu", VOCAB2)
    assert_close(result.values, cross_entropy(logits, labels, "none")[0], "loss after a restart")
    assert adapter.worker.info()["pid"] != first


def test_a_hung_worker_is_killed_within_the_time_limit(adapter):
    pid = adapter.worker.info()["pid"]
    started = time.monotonic()
    with pytest.raises(RankFailed, match=f"pid {pid}\\) did not answer within 1 s"):
        adapter.worker.run(time.sleep, 30, timeout_s=1.0)
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):  # killed, not left running
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)


OUT_OF_RANGE_CASE = """
schema: 1
cases:
  - name: split-out-of-range-labels
    op: sparse_softmax_cross_entropy
    inputs:
      logits: [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]
      labels: [1, 4, -1, 2]
    invalid_labels: true
    grad: false
    layouts: [{vocab: 2}, {batch: 2}]
"""


@pytest.mark.parametrize("layout", [VOCAB2, BATCH2], ids=lambda layout: layout.name)
def test_out_of_range_labels_are_the_known_divergences_of_each_mode(adapter, tmp_path, monkeypatch, layout):
    """optax's gather: NaN past the last class, -1 the last class; the vocab-parallel shard_map:
    the log-sum-exp of a row whose target no device holds. The plug-in's manifest names both."""
    from conformance import adapters
    from conformance.cases import load_case_file
    from conformance.core import manifest
    from conformance.core.checks import Check
    from conformance.core.runner import Runner

    (tmp_path / "cases.yaml").write_text(OUT_OF_RANGE_CASE)
    case, = load_case_file(tmp_path / "cases.yaml")
    monkeypatch.setattr(adapters, "load", lambda framework: adapter)
    runner = Runner(manifest.load(PLUGIN / "xent_sharded" / "divergences.yaml"))

    record = runner.run(Check(case, "jax-sharded", "float32", "cpu", "loss", layout=layout))

    assert record["outcome"] == "xfailed", record["message"]
    assert {mode: each["outcome"] for mode, each in record["modes"].items()} == dict.fromkeys(MODES, "xfailed")
    assert record["manifest"].startswith("jax-sharded-")
