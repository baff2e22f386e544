"""Framework megatron-core (plugins/xent-sharded): Megatron-core's vocab-parallel cross-entropy on
2 gloo ranks, against a float64 NumPy cross-entropy of the whole inputs (and, where Megatron is
known to be wrong, against a model of what it computes, so that the adapter is shown to pass
the smoothing through and to read each rank's own loss); what is not offered. The unfused mode
only, but for the fused mode's refusal of label_smoothing (it raises before compiling: the
fused mode's torch.compile costs tens of seconds). One pool of 2 ranks, started once."""

import numpy as np
import pytest

pytest.importorskip("megatron.core", reason="megatron-core needs pip install 'xent-sharded[megatron]'")

from conformance.adapters import api  # noqa: E402
from conformance.adapters.api import NotOffered  # noqa: E402
from conformance.sharded.layouts import Layout  # noqa: E402
from tests.unit import sharded_plugin  # noqa: E402

PLUGIN = sharded_plugin.PLUGIN
OP = "sparse_softmax_cross_entropy"
FLOAT32_TOLERANCE = 8 * np.finfo(np.float32).eps  # relative, on values of order 1
VOCAB2 = Layout("vocab", 2)


@pytest.fixture(scope="module")
def adapter():
    with sharded_plugin.started("xent_sharded.megatron", "MegatronAdapter") as started:
        yield started


@pytest.fixture
def unfused_only():
    """Run the vocab_parallel mode only (the fused mode compiles for tens of seconds)."""
    api.select_modes(["vocab_parallel"])
    yield
    api.select_modes(None)


def log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_declares_per_token_vocab_parallel_losses_in_megatrons_smoothing_convention(adapter):
    capability = adapter.capabilities[OP]
    assert adapter.framework == "megatron-core" and adapter.layouts == ("vocab",)
    assert capability.layouts == {"vocab"} and capability.reductions == ("none",)
    assert capability.options == {"label_smoothing"} and capability.variant == "megatron_smoothing"
    assert capability.modes[0] == "vocab_parallel"


def test_whole_inputs_and_uneven_shards_are_not_offered(adapter):
    logits, labels = sharded_plugin.float32_values((5, 7), 1), np.array([6, 3, 0, 4, 6])
    with pytest.raises(NotOffered, match="split across ranks"):
        adapter.loss(OP, logits, labels, {}, "float32", "cpu")
    with pytest.raises(NotOffered, match="equal vocabulary shards only .* 4 \\+ 3"):  # before any rank starts
        adapter.loss(OP, logits, labels, {}, "float32", "cpu", layout=VOCAB2)


def test_loss_and_gradient_at_vocab2_match_the_whole_inputs(adapter, unfused_only):
    logits, labels = sharded_plugin.float32_values((6, 8), 2), np.array([0, 7, 3, 4, 5, 1])
    cotangent = np.array([1.0, -0.5, 2.0, 0.25, 1.5, -1.0])
    expected = -np.take_along_axis(log_softmax(logits), labels[:, None], -1)[:, 0]
    gradient = (np.exp(log_softmax(logits)) - np.eye(8)[labels]) * cotangent[:, None]

    result = adapter.loss(OP, logits, labels, {}, "float32", "cpu", layout=VOCAB2)
    assert result.mode == "vocab_parallel" and result.dtype == "float32"
    np.testing.assert_allclose(result.values, expected, rtol=FLOAT32_TOLERANCE)
    assert len(result.per_rank) == 2 and np.array_equal(result.per_rank[0], result.per_rank[1])
    assert result.communication["bytes"] == {"allreduce": 3 * 4 * 6}  # max, target logit, sum of exps

    grad = adapter.grad(OP, logits, labels, {}, "float32", "cpu", cotangent=cotangent, layout=VOCAB2)
    np.testing.assert_allclose(grad.values, gradient, rtol=FLOAT32_TOLERANCE, atol=1e-7)


def test_smoothing_at_vocab2_is_that_of_each_ranks_own_vocabulary(adapter, unfused_only):
    """Megatron-LM #7464: each rank smooths with its own V / 2 classes and the mean of its own
    log-probabilities, so the ranks disagree; modelled here rank by rank."""
    logits, labels, eps = sharded_plugin.float32_values((4, 8), 3), np.array([7, 0, 2, 5]), 0.1
    logp = log_softmax(logits)
    nll = -np.take_along_axis(logp, labels[:, None], -1)[:, 0]
    local = 4
    smoothing = eps * local / (local - 1)
    per_rank = [(1 - smoothing) * nll - smoothing * logp[:, rank * local:(rank + 1) * local].mean(-1)
                for rank in range(2)]

    result = adapter.loss(OP, logits, labels, {"label_smoothing": eps}, "float32", "cpu", layout=VOCAB2)
    for rank, expected in enumerate(per_rank):
        np.testing.assert_allclose(result.per_rank[rank], expected, rtol=4 * FLOAT32_TOLERANCE)
    whole = (1 - eps * 8 / 7) * nll - eps * 8 / 7 * logp.mean(-1)  # the convention over all 8 classes
    assert np.abs(result.values - whole).max() > 0.01


def test_fused_mode_refuses_label_smoothing(adapter):
    logits, labels = sharded_plugin.float32_values((4, 8), 4), np.array([7, 0, 2, 5])
    api.select_modes(["fused"])
    try:
        result = adapter.loss(OP, logits, labels, {"label_smoothing": 0.1}, "float32", "cpu", layout=VOCAB2)
    finally:
        api.select_modes(None)
    assert result.mode == "fused" and result.values is None
    assert "unexpected keyword argument 'label_smoothing'" in str(result.raised)


def test_float32_logits_hold_the_gradient_and_a_second_backward_raises(adapter):
    logits, labels = sharded_plugin.float32_values((4, 8), 5), np.array([1, 6, 3, 4])
    cotangent = np.ones(4)
    probe = adapter.backward_probe(OP, logits, labels, {}, "float32", "cpu", cotangent, layout=VOCAB2)
    gradient = np.exp(log_softmax(logits)) - np.eye(8)[labels]
    np.testing.assert_allclose(probe.first.values, gradient, rtol=FLOAT32_TOLERANCE, atol=1e-7)
    np.testing.assert_allclose(probe.prediction_after, gradient, rtol=FLOAT32_TOLERANCE, atol=1e-7)  # PR #1594
    assert probe.second.values is None and "modified by an inplace operation" in str(probe.second.raised)
    np.testing.assert_array_equal(probe.labels_after, labels)

    intact = adapter.backward_probe(OP, logits, labels, {}, "float64", "cpu", cotangent, layout=VOCAB2)
    np.testing.assert_array_equal(intact.prediction_after, logits)  # .float() copies other dtypes
