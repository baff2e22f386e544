"""The example plug-in (examples/xent-example-plugin) through --adapter, as a kernel author
uses the suite: every check passes, and each planted fault fails checks that name themselves."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "xent-example-plugin"
TARGET = "xent_example.adapter:ExampleKernelAdapter"


def run_suite(tmp_path, fault=""):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{PLUGIN}:{ROOT}", "XENT_EXAMPLE_FAULT": fault,
           "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "pytest", str(ROOT / "conformance/pytest/suite/test_matrix.py"), "-q",
               "-p", "no:cacheprovider", "--adapter", TARGET, "--framework", "example-kernel",
               "--require", "example-kernel", "--results", str(tmp_path / "out.json"),
               "--cases", str(ROOT / "cases/edges.yaml"), "--cases", str(ROOT / "cases/options.yaml"),
               "--cases", str(ROOT / "cases/sparse.yaml"), "--cases", str(ROOT / "cases/article.yaml"),
               "--cases", str(ROOT / "cases/linear.yaml")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    records = json.loads((tmp_path / "out.json").read_text())["results"]
    return done, records


def test_the_example_kernel_passes_every_check_it_offers(tmp_path):
    done, records = run_suite(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    ran = [r for r in records if r["outcome"] != "skipped"]
    assert len(ran) >= 40 and {r["outcome"] for r in ran} == {"passed"}
    assert {r["quantity"] for r in ran} == {"loss", "loss_dtype", "grad_logits", "vjp_logits", "jvp", "inputs_intact",
                                            "second_backward", "grad_linear_weight", "grad_linear_bias",
                                            "vjp_linear_weight", "vjp_linear_bias"}
    assert {r["framework"] for r in records} == {"example-kernel"}


@pytest.mark.parametrize("fault, failing_case", [
    ("mean-grad", "sparse-random-mean::grad_logits::example-kernel::float32::cpu"),
    ("unshifted-lse", "sparse-offset-1e4::loss::example-kernel::float32::cpu"),
    ("first-cotangent", "sparse-random::vjp_logits::example-kernel::float32::cpu"),
    ("tangent-without-label", "sparse-random::jvp::example-kernel::float32::cpu"),
    ("in-place-backward", "sparse-random::inputs_intact::example-kernel::float32::cpu"),
    ("rescaled-second-backward", "sparse-random::second_backward::example-kernel::float32::cpu"),
    ("weight-first-cotangent", "linear-random::vjp_linear_weight::example-kernel::float32::cpu"),
    ("uniform-smoothing", "linear-label-smoothing::loss::example-kernel::float32::cpu"),
    ("chunked-unchecked-labels", "sparse-label-minus-one::loss::example-kernel::float32::cpu"),
    ("chunked-unchecked-labels", "sparse-label-equal-to-classes::loss::example-kernel::float64::cpu"),
])
def test_a_planted_fault_fails_checks_that_name_themselves(tmp_path, fault, failing_case):
    done, records = run_suite(tmp_path, fault)
    assert done.returncode == 1
    failed = {r["id"] for r in records if r["outcome"] == "failed"}
    assert failing_case in failed, sorted(failed)
    op = next(r["op"] for r in records if r["id"] == failing_case)
    assert re.search(rf"example-kernel( \(\w+\))? {op}", done.stdout)


def test_a_mode_that_accepts_undefined_input_fails_though_the_other_refuses(tmp_path):
    done, records = run_suite(tmp_path, "chunked-unchecked-labels")
    record = next(r for r in records if r["id"] == "sparse-label-minus-one::loss::example-kernel::float32::cpu")
    assert record["outcome"] == "failed" and record["failure"] == ["finite"]
    assert record["modes"]["eager"] == {**record["modes"]["eager"], "outcome": "passed", "refused": "nan"}
    assert record["modes"]["chunked"]["outcome"] == "failed"
    assert "example-kernel (chunked) sparse_softmax_cross_entropy" in record["message"]
