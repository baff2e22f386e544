"""Liger-Kernel's vocab-parallel cross-entropy (plugins/xent-kernels, framework ids liger-vp and
liger-vp-megatron) on 2 gloo ranks, its Triton kernels under Triton's interpreter on the CPU:
each smoothing formula against its own convention computed here from the whole logits, the
modes wired to Liger's, the splits it cannot take refused, and its known divergences reached
through the runner with the plug-in's manifest. One pool of 2 ranks (some 3 s to start)."""
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch.distributed")
pytest.importorskip("liger_kernel.ops.vocab_parallel_cross_entropy")

from conformance import adapters  # noqa: E402
from conformance.adapters.api import NotOffered  # noqa: E402
from conformance.cases import load_case_file  # noqa: E402
from conformance.core import manifest  # noqa: E402
from conformance.core.checks import Check  # noqa: E402
from conformance.core.runner import Runner  # noqa: E402
from conformance.sharded.layouts import Layout  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "xent-kernels"
OP = "sparse_softmax_cross_entropy"
VOCAB2 = Layout("vocab", 2)
LOGITS = np.random.default_rng(26).normal(0.0, 2.0, (4, 8))
LABELS = np.array([7, 0, 2, 5])
EPS = 0.1


@pytest.fixture(scope="module")
def liger():
    """(liger-vp, liger-vp-megatron), sharing one pool of 2 ranks: both run the same rank module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(PLUGIN))
        adapters.configure(["xent_kernels.liger_vocab_parallel:LigerVocabParallelAdapter",
                            "xent_kernels.liger_vocab_parallel:LigerVocabParallelMegatronAdapter"])
        pytorch, megatron = adapters.load("liger-vp"), adapters.load("liger-vp-megatron")
        megatron._pools = pytorch._pools
        yield pytorch, megatron
        pytorch.close()
        adapters.configure()
        sys.modules.pop("xent_kernels.liger_vocab_parallel", None)


def smoothed(z: np.ndarray, labels: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(1 - alpha) nll + alpha mean(-log_softmax) per token over the whole vocabulary, and the
    gradient of its sum."""
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    one_hot = np.eye(z.shape[-1])[labels]
    loss = -(1 - alpha) * np.take_along_axis(log_p, labels[:, None], -1)[:, 0] - alpha * log_p.mean(-1)
    return loss, np.exp(log_p) - (1 - alpha) * one_hot - alpha / z.shape[-1]


def test_each_id_declares_its_formula_convention_and_modes(liger):
    pytorch, megatron = liger
    assert (pytorch.capabilities[OP].variant, pytorch.capabilities[OP].modes) == ("exact", ("global",))
    assert megatron.capabilities[OP].variant == "megatron_smoothing"
    assert megatron.capabilities[OP].modes == ("global", "partition")
    for adapter in liger:
        assert adapter.layouts == ("vocab",) and adapter.capabilities[OP].reductions == ("none",)


def test_both_formulas_give_the_loss_of_the_whole_vocabulary_on_every_rank(liger):
    pytorch, megatron = liger
    options = {"label_smoothing": EPS}
    got = pytorch.loss(OP, LOGITS, LABELS, options, "float32", "cpu", layout=VOCAB2)
    np.testing.assert_allclose(got.values, smoothed(LOGITS, LABELS, EPS)[0], rtol=2e-6)
    assert got.dtype == "float32" and len(got.per_rank) == 2
    np.testing.assert_array_equal(got.per_rank[0], got.per_rank[1])

    global_mode = megatron.loss(OP, LOGITS, LABELS, options, "float32", "cpu", layout=VOCAB2)
    np.testing.assert_allclose(global_mode.values, smoothed(LOGITS, LABELS, EPS * 8 / 7)[0], rtol=2e-6)
    partition = global_mode.others[0]
    assert (global_mode.mode, partition.mode) == ("global", "partition")
    # Megatron's behaviour: each rank smooths over its own 4 classes, so the ranks disagree
    assert np.max(np.abs(partition.per_rank[0] - partition.per_rank[1])) > 0.05


def test_the_gathered_gradient_is_the_whole_vocabulary_gradient(liger):
    _, megatron = liger
    got = megatron.grad(OP, LOGITS, LABELS, {"label_smoothing": EPS}, "float32", "cpu", layout=VOCAB2)
    np.testing.assert_allclose(got.values, smoothed(LOGITS, LABELS, EPS * 8 / 7)[1], atol=1e-6)


def test_targets_ignored_by_default_at_minus_100_cost_nothing(liger):
    pytorch, _ = liger
    labels = np.array([7, -100, 2, -100])
    got = pytorch.loss(OP, LOGITS, labels, {}, "float32", "cpu", layout=VOCAB2)
    assert got.values[1] == 0 and got.values[3] == 0 and got.values[0] > 0


def test_splits_it_cannot_take_are_not_offered(liger):
    pytorch, _ = liger
    with pytest.raises(NotOffered, match="equal vocabulary shards only"):
        pytorch.loss(OP, LOGITS[:, :7], LABELS % 7, {}, "float32", "cpu", layout=VOCAB2)
    with pytest.raises(NotOffered, match="split across ranks"):
        pytorch.loss(OP, LOGITS, LABELS, {}, "float32", "cpu")


def test_the_runner_recognises_the_partition_mode_and_the_second_backward(liger):
    cases = {case.name: case for case in load_case_file(ROOT / "cases" / "sharded.yaml")}
    runner = Runner(manifest.load(PLUGIN / "xent_kernels" / "divergences.yaml"))
    case = cases["sharded-label-smoothing-per-token"]

    loss = runner.run(Check(case, "liger-vp-megatron", "float32", "cpu", "loss", layout=VOCAB2))
    assert (loss["outcome"], loss["manifest"]) == ("xfailed", "liger-vp-megatron-partition-smooths-local-vocabulary")
    assert {mode: each["outcome"] for mode, each in loss["modes"].items()} == {"global": "passed",
                                                                               "partition": "xfailed"}
    second = runner.run(Check(case, "liger-vp", "float32", "cpu", "second_backward", layout=VOCAB2))
    assert (second["outcome"], second["manifest"]) == ("xfailed", "liger-vp-second-backward-silent")
    intact = runner.run(Check(case, "liger-vp", "float32", "cpu", "inputs_intact", layout=VOCAB2))
    assert intact["outcome"] == "passed", intact["message"]
