"""The example plug-in's sharded cross-entropy (framework example-vocab-parallel) through the
suite, as a kernel author checks one: every check it offers over cases/sharded.yaml passes,
and each planted fault (XENT_EXAMPLE_FAULT) fails checks that name it, under the layout
where it shows and not the others."""
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the sharded example runs on torch.distributed ranks")

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "xent-example-plugin"
FRAMEWORK = "example-vocab-parallel"
ENTRY_POINT = "xent_example.vocab_parallel:VocabParallelAdapter"
QUANTITIES = {"loss", "loss_dtype", "grad_logits", "vjp_logits", "inputs_intact", "second_backward", "rank_agreement"}
LAYOUTS = {"vocab1", "vocab2", "batch1", "batch2", "sequence1", "sequence2"}


def registered_entry_point(tmp_path: Path) -> list[str]:
    """A folder for PYTHONPATH that registers the adapter's entry point as installing the
    plug-in does (the suite reads a sharded adapter's layouts through it); none where the
    interpreter already has it."""
    if any(p.name == FRAMEWORK for p in metadata.entry_points(group="xent_conformance.adapters")):
        return []
    info = tmp_path / "entry_points" / "xent_example_vocab_parallel-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xent-example-vocab-parallel\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[xent_conformance.adapters]\n{FRAMEWORK} = {ENTRY_POINT}\n")
    return [str(info.parent)]


def run_suite(tmp_path: Path, fault: str = "", select: str = ""):
    path = ":".join([*registered_entry_point(tmp_path), str(PLUGIN), str(ROOT)])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "XENT_EXAMPLE_FAULT": fault, "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "pytest", str(ROOT / "conformance/pytest/suite/test_matrix.py"), "-q",
               "-p", "no:cacheprovider", "--framework", FRAMEWORK, "--require", FRAMEWORK, "--device", "cpu",
               "--results", str(tmp_path / "out.json"), "--cases", str(ROOT / "cases/sharded.yaml"),
               *(["-k", select] if select else [])]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert (tmp_path / "out.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads((tmp_path / "out.json").read_text())["results"]


def layout_name(record: dict) -> str:
    return f"{record['layout']['axis']}{record['layout']['ranks']}"


def test_every_check_the_sharded_example_offers_passes(tmp_path):
    done, records = run_suite(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    ran = [r for r in records if r["outcome"] != "skipped"]
    assert len(ran) >= 100 and {r["outcome"] for r in ran} == {"passed"}
    assert {r["quantity"] for r in ran} >= QUANTITIES
    assert {layout_name(r) for r in ran} >= LAYOUTS
    assert {r["dtype"] for r in ran} == {"float32", "float64", "bfloat16", "float16"}
    assert {r["framework"] for r in records} == {FRAMEWORK}
    # three float32 all-reduces a token at vocab 2 (four with smoothing), never the logits
    vocab2 = [r for r in ran if r["quantity"] == "loss" and r["dtype"] == "float32" and layout_name(r) == "vocab2"]
    assert vocab2
    for record in vocab2:
        sent = record["communication"]
        assert 0 < sent["max_bytes_per_rank"] <= 4 * sent["floor_bytes"], (record["id"], sent)


@pytest.mark.parametrize("fault, select, failing, passing", [
    ("local-vocab-smoothing", "sharded-label-smoothing and (vocab2 or batch2)",
     ["sharded-label-smoothing::loss::example-vocab-parallel::float32::cpu::vocab2",
      "sharded-label-smoothing::grad_logits::example-vocab-parallel::float64::cpu::vocab2",
      "sharded-label-smoothing::rank_agreement::example-vocab-parallel::float32::cpu::vocab2"],
     "batch2"),
    ("per-rank-mean", "batch2 or sequence2 or (sharded-unequal-valid-counts and vocab2)",
     ["sharded-unequal-valid-counts::loss::example-vocab-parallel::float32::cpu::batch2",
      "sharded-unequal-valid-counts::loss::example-vocab-parallel::float64::cpu::batch2",
      "sharded-batch-shard-all-ignored::loss::example-vocab-parallel::float32::cpu::batch2",
      "sharded-sequence-shard-without-valid-target::loss::example-vocab-parallel::bfloat16::cpu::sequence2"],
     "vocab2"),
])
def test_a_planted_fault_fails_checks_that_name_it(tmp_path, fault, select, failing, passing):
    done, records = run_suite(tmp_path, fault, select)
    assert done.returncode == 1, done.stdout[-3000:]
    failed = {r["id"] for r in records if r["outcome"] == "failed"}
    assert set(failing) <= failed, sorted(failed)
    # the layout where the fault cannot show is not blamed
    others = [r for r in records if layout_name(r) == passing and r["outcome"] != "skipped"]
    assert others and {r["outcome"] for r in others} == {"passed"}
    for check in failing:
        quantity = check.split("::")[1]
        assert re.search(rf"{FRAMEWORK} \(eager\) sparse_softmax_cross_entropy {quantity} ", done.stdout), quantity
