"""Framework deepspeed (plugins/xent-sharded): DeepSpeed's vocab_parallel_cross_entropy on 2 gloo
ranks, split on the vocabulary (uneven, 4 + 3) and on the sequence of a (batch, sequence,
classes) prediction, against a float64 NumPy cross-entropy of the whole inputs; its refusal of
an out-of-range target, its zero mean over no target, and what it does not offer. One pool of
ranks (some 3 s to start) is shared by the module's tests."""

import numpy as np
import pytest

pytest.importorskip("deepspeed", reason="framework deepspeed needs deepspeed (pip install 'xent-sharded[deepspeed]')")

from conformance.adapters.api import NotOffered  # noqa: E402
from conformance.sharded.layouts import Layout  # noqa: E402
from tests.unit import sharded_plugin  # noqa: E402

PLUGIN = sharded_plugin.PLUGIN
OP = "sparse_softmax_cross_entropy"
IGNORE = -100
FLOAT32_TOLERANCE = 8 * np.finfo(np.float32).eps  # relative, on values of order 1
VOCAB2, SEQUENCE2 = Layout("vocab", 2), Layout("sequence", 2)


@pytest.fixture(scope="module")
def extensions_dir(tmp_path_factory):
    """Where a DeepSpeed op built on the ranks would go (the spawned ranks inherit it)."""
    path = tmp_path_factory.mktemp("torch_extensions")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_EXTENSIONS_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def adapter(extensions_dir):
    with sharded_plugin.started("xent_sharded.deepspeed_adapter", "DeepSpeedAdapter") as started:
        yield started


def cross_entropy(logits, labels, reduction, cotangent=None):
    """Float64 losses of classes-last logits with ignored targets (IGNORE: loss 0, no gradient; a
    mean divides by the valid targets of the whole inputs), and the gradient of sum(losses) (or of
    sum(cotangent * losses), or of the reduced loss)."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != IGNORE
    targets = np.eye(logits.shape[-1])[np.where(valid, labels, 0)] * valid[..., None]
    losses = -(targets * log_softmax).sum(-1)
    d_losses = valid[..., None] * np.exp(log_softmax) - targets
    if reduction == "none":
        scale = np.ones(labels.shape) if cotangent is None else np.asarray(cotangent)
        return losses, d_losses * scale[..., None]
    if reduction == "sum":
        return losses.sum(), d_losses
    return losses.sum() / valid.sum(), d_losses / valid.sum()


def assert_close(actual, expected, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    error = np.max(np.abs(actual - expected) / np.maximum(1.0, np.abs(expected)))
    assert error <= FLOAT32_TOLERANCE, f"{what}: error {error:.3g}\nactual {actual}\nexpected {expected}"


def test_uneven_vocabulary_split_gives_the_mean_over_valid_targets(adapter):
    logits = sharded_plugin.float32_values((5, 7), 1)
    labels = np.array([6, IGNORE, 0, 4, 3])  # 7 classes on 2 ranks: 4 + 3; target 0 lies on rank 0, 6 and 4 on rank 1
    options = {"reduction": "mean", "ignore_index": IGNORE}
    want_loss, want_grad = cross_entropy(logits, labels, "mean")
    loss = adapter.loss(OP, logits, labels, options, "float32", "cpu", layout=VOCAB2)
    assert loss.dtype == "float32"
    assert_close(loss.values, want_loss, "loss")
    assert len(loss.per_rank) == 2 and np.array_equal(loss.per_rank[0], loss.per_rank[1]), loss.per_rank
    assert loss.communication["max_bytes_per_rank"] > 0, loss.communication
    grad = adapter.grad(OP, logits, labels, options, "float32", "cpu", layout=VOCAB2)
    assert_close(grad.values, want_grad, "gradient")


@pytest.mark.parametrize("labels", [
    # positions 3 to 5 (the second rank's) all ignored: a mean of the ranks' means would be 0 / 0
    [[1, 4, IGNORE, IGNORE, IGNORE, IGNORE], [0, IGNORE, 3, IGNORE, IGNORE, IGNORE]],
    # the ranks hold 4 valid targets and 1: a mean of the ranks' means weighs the 1 four times over
    [[1, 4, IGNORE, IGNORE, 2, IGNORE], [0, IGNORE, 3, IGNORE, IGNORE, IGNORE]],
], ids=["shard-without-valid-target", "unequal-valid-counts"])
def test_sequence_split_averages_over_the_valid_targets_of_every_rank(adapter, labels):
    logits = sharded_plugin.float32_values((2, 6, 5), 2)
    labels = np.array(labels)
    options = {"reduction": "mean", "ignore_index": IGNORE}
    want_loss, want_grad = cross_entropy(logits, labels, "mean")
    loss = adapter.loss(OP, logits, labels, options, "float32", "cpu", layout=SEQUENCE2)
    for rank, value in enumerate(loss.per_rank):
        assert_close(value, want_loss, f"rank {rank}'s loss")
    grad = adapter.grad(OP, logits, labels, options, "float32", "cpu", layout=SEQUENCE2)
    assert_close(grad.values, want_grad, "gradient")


def test_sequence_split_per_token_losses_and_cotangent(adapter):
    logits = sharded_plugin.float32_values((2, 4, 6), 3)
    labels = np.array([[2, IGNORE, 5, 0], [IGNORE, IGNORE, 1, 3]])
    cotangent = np.random.default_rng(4).uniform(0.5, 2.0, size=labels.shape)
    want_losses, want_vjp = cross_entropy(logits, labels, "none", cotangent)
    options = {"ignore_index": IGNORE}
    losses = adapter.loss(OP, logits, labels, options, "float32", "cpu", layout=SEQUENCE2)
    assert losses.per_rank is None  # each rank holds its own positions' losses
    assert_close(losses.values, want_losses, "per-token losses")
    vjp = adapter.grad(OP, logits, labels, options, "float32", "cpu", cotangent=cotangent, layout=SEQUENCE2)
    assert_close(vjp.values, want_vjp, "VJP")


def test_out_of_range_target_is_refused_on_every_rank(adapter):
    logits = sharded_plugin.float32_values((3, 4), 5)
    result = adapter.loss(OP, logits, np.array([1, 4, 2]), {"reduction": "sum"}, "float32", "cpu", layout=VOCAB2)
    assert result.values is None, result.values
    message = str(result.raised)
    assert "rank 0 raised ValueError" in message and "rank 1 raised ValueError" in message, message
    assert "out of range for vocabulary size 4" in message, message


def test_mean_over_no_target_is_zero_not_nan(adapter):
    """The behaviour the manifest records (deepspeed-mean-over-nothing-is-zero)."""
    logits = sharded_plugin.float32_values((2, 4, 5), 6)
    labels = np.full((2, 4), IGNORE)
    options = {"reduction": "mean", "ignore_index": IGNORE}
    for layout in (VOCAB2, SEQUENCE2):
        assert adapter.loss(OP, logits, labels, options, "float32", "cpu", layout=layout).values == 0.0
        assert not adapter.grad(OP, logits, labels, options, "float32", "cpu", layout=layout).values.any()


def test_float64_logits_are_computed_in_float32(adapter):
    """The behaviour the manifest records (deepspeed-float64-computed-in-float32)."""
    logits = sharded_plugin.float32_values((3, 4), 7) + 1e-9  # not float32 values
    loss = adapter.loss(OP, logits, np.array([0, 3, 1]), {"reduction": "sum"}, "float64", "cpu", layout=VOCAB2)
    assert loss.dtype == "float32"
    assert np.float32(loss.values) == loss.values


def test_no_shared_memory_op_was_built(adapter, extensions_dir):
    """DeepSpeed's communication backend wraps the ranks' process group without compiling its
    CPU shared-memory all-reduce, which the cross-entropy does not use (minutes on two cores)."""
    adapter.loss(OP, sharded_plugin.float32_values((2, 4), 8), np.array([0, 3]), {"reduction": "sum"}, "float32", "cpu",
                 layout=VOCAB2)
    assert not any(extensions_dir.iterdir()), sorted(path.name for path in extensions_dir.iterdir())


def test_what_is_not_offered(adapter):
    capability = adapter.capabilities[OP]
    assert set(capability.options) == {"ignore_index"}
    assert set(capability.reductions) == {"none", "sum", "mean"}
    assert set(capability.layouts) == {"vocab", "sequence"} == set(adapter.layouts)
    with pytest.raises(NotOffered, match="split across ranks only"):
        adapter.loss(OP, sharded_plugin.float32_values((2, 4), 9), np.array([0, 1]), {}, "float32", "cpu")
    with pytest.raises(NotOffered, match="forward mode"):
        adapter.jvp(OP, sharded_plugin.float32_values((2, 4), 9), np.array([0, 1]), {}, "float32", "cpu", None,
                    layout=VOCAB2)
