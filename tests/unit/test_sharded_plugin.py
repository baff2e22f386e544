"""The plug-in plugins/xent-sharded end to end (2 gloo ranks, some 3 s to start): a case of
cases/sharded.yaml checked by the runner under its layouts, against the reference of the whole
inputs, with the plug-in's own manifest."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed.tensor")

from conformance import adapters  # noqa: E402
from conformance.cases import load_case_file  # noqa: E402
from conformance.core import manifest  # noqa: E402
from conformance.core.checks import Check  # noqa: E402
from conformance.core.runner import Runner  # noqa: E402
from conformance.sharded.layouts import Layout  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "xent-sharded"


@pytest.fixture
def dtensor(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    adapters.configure(["xent_sharded.dtensor:DTensorAdapter"])
    yield adapters.load("torch-dtensor")
    adapters.load("torch-dtensor").close()
    adapters.configure()
    sys.modules.pop("xent_sharded.dtensor", None)


def test_unequal_valid_counts_on_batch_ranks_are_the_known_divergence_and_vocab_ranks_conform(dtensor):
    cases = {case.name: case for case in load_case_file(ROOT / "cases" / "sharded.yaml")}
    runner = Runner(manifest.load(PLUGIN / "xent_sharded" / "divergences.yaml"))
    case = cases["sharded-unequal-valid-counts"]

    batch = runner.run(Check(case, "torch-dtensor", "float64", "cpu", "loss", layout=Layout("batch", 2)))
    assert (batch["outcome"], batch["manifest"]) == ("xfailed", "dtensor-batch-mean-of-rank-means")
    assert batch["id"].endswith("::batch2") and batch["layout"] == {"axis": "batch", "ranks": 2}

    for quantity in ("loss", "grad_logits"):
        vocab = runner.run(Check(case, "torch-dtensor", "float64", "cpu", quantity, layout=Layout("vocab", 2)))
        assert vocab["outcome"] == "passed", vocab["message"]
    gradient = runner.run(Check(case, "torch-dtensor", "float64", "cpu", "grad_logits", layout=Layout("batch", 2)))
    assert gradient["outcome"] == "passed", gradient["message"]  # the gradient is right (pytorch #185167)
