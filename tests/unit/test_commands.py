"""merge, diff, gate and summary: exit codes and what they print."""
import json
import subprocess
import sys

import pytest

from conformance.results import records as results


def record(check_id, outcome="passed", ulp=1.0, framework="torch"):
    return {"id": check_id, "case": "c", "op": "sigmoid_cross_entropy", "quantity": "loss", "kind": "reference",
            "framework": framework, "dtype": "float32", "device": "cpu", "outcome": outcome, "reason": None,
            "max_ulp_err": ulp, "message": "broken" if outcome == "failed" else "", "file": "cases/x.yaml"}


def write(path, records):
    results.write(path, {"frameworks": {}}, records)
    return path


def run(*args):
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], capture_output=True, text=True)


def test_merge_joins_files_and_refuses_a_repeated_check(tmp_path):
    a = write(tmp_path / "a.json", [record("x"), record("y")])
    b = write(tmp_path / "b.json", [record("z")])
    done = run("merge", "-o", tmp_path / "m.json", a, b)
    assert done.returncode == 0
    assert len(json.loads((tmp_path / "m.json").read_text())["results"]) == 3
    done = run("merge", "-o", tmp_path / "m2.json", a, a)
    assert done.returncode == 2 and "'x'" in done.stderr and "Traceback" not in done.stderr


def device_record(device, outcome, reason=None):
    check_id = f"c::loss::torch::float32::{device}"
    return {**record(check_id, outcome), "device": device, "reason": reason}


def test_a_cpu_run_and_a_gpu_run_merge_and_report_together(tmp_path):
    cpu = write(tmp_path / "cpu.json", [device_record("cpu", "passed"), device_record("cuda", "skipped", "no-device")])
    gpu = write(tmp_path / "gpu.json", [device_record("cuda", "failed")])  # a run with --device cuda
    for order in ((cpu, gpu), (gpu, cpu)):
        done = run("merge", "-o", tmp_path / "m.json", *order)
        assert done.returncode == 0, done.stderr
        merged = {r["id"]: r for r in json.loads((tmp_path / "m.json").read_text())["results"]}
        assert merged["c::loss::torch::float32::cuda"]["outcome"] == "failed"
        assert merged["c::loss::torch::float32::cpu"]["outcome"] == "passed"
    done = run("report", cpu, gpu, "--format", "md", "-o", tmp_path / "r.md")
    assert done.returncode == 0, done.stderr
    assert "cuda" in (tmp_path / "r.md").read_text()


def test_two_runs_of_the_same_check_on_its_device_do_not_merge(tmp_path):
    a = write(tmp_path / "a.json", [device_record("cuda", "passed")])
    b = write(tmp_path / "b.json", [device_record("cuda", "failed")])
    done = run("merge", "-o", tmp_path / "m.json", a, b)
    assert done.returncode == 2 and "is in both" in done.stderr


def test_diff_of_identical_runs_exits_0(tmp_path):
    a = write(tmp_path / "a.json", [record("x"), record("y", "xfailed")])
    assert run("diff", a, a).returncode == 0


@pytest.mark.parametrize("now", ["failed", "error", "skipped", None])
def test_diff_flags_a_passing_check_that_no_longer_passes(tmp_path, now):
    base = write(tmp_path / "base.json", [record("keep"), record("torch-check")])
    new_records = [record("keep")] + ([record("torch-check", now)] if now else [])
    new = write(tmp_path / "new.json", new_records)
    done = run("diff", base, new, "--json", tmp_path / "d.json")
    assert done.returncode == 1
    assert "REGRESSION" in done.stdout and "torch-check" in done.stdout
    assert json.loads((tmp_path / "d.json").read_text())["regressions"] == 1


def test_diff_reports_growth_and_fixed_divergences_without_failing(tmp_path):
    base = write(tmp_path / "base.json", [record("a", ulp=1.0), record("b", "xfailed")])
    new = write(tmp_path / "new.json", [record("a", ulp=3.0), record("b", "xpassed")])
    done = run("diff", base, new)
    assert done.returncode == 0
    assert "error-grew" in done.stdout and "fixed-divergence" in done.stdout


def test_gate_fails_on_a_failed_check_and_counts_skips(tmp_path):
    ok = write(tmp_path / "ok.json", [record("a"), record("b", "skipped")])
    bad = write(tmp_path / "bad.json", [record("a", "failed")])
    done = run("gate", ok)
    assert done.returncode == 0 and "1 skipped" in done.stdout
    assert run("gate", bad).returncode == 1


@pytest.mark.parametrize("command", ["summary", "gate", "report"])
def test_missing_or_invalid_results_exit_2_with_one_line(tmp_path, command):
    (tmp_path / "bad.json").write_text("{not json")
    for path in (tmp_path / "missing.json", tmp_path / "bad.json"):
        done = run(command, path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_nan_and_infinity_are_written_as_strings(tmp_path):
    assert results.number(float("nan")) == "nan" and results.number(float("-inf")) == "-inf"
    summary = results.summarize([1.0, float("inf")])
    json.dumps(summary, allow_nan=False)


def test_history_shows_a_check_across_the_runs_kept(tmp_path):
    from datetime import datetime, timezone

    from conformance.results import history

    kept = tmp_path / "history"
    for day, version, ulp in ((1, "2.13.0", 1.0), (2, "2.14.0", 7.5)):
        env = {"frameworks": {"torch": {"packages": {"torch": version}}}}
        path = tmp_path / f"run{day}.json"
        results.write(path, env, [record("c::loss::torch::float32::cpu", ulp=ulp), record("other")])
        name = history.run_name(env, datetime(2026, 12, day, tzinfo=timezone.utc))
        assert name == f"2026-12-0{day}T000000Z--torch-{version}"
        (kept / f"{name}.json").parent.mkdir(exist_ok=True)
        (kept / f"{name}.json").write_text(path.read_text())
    done = run("history", "c::loss::torch::*", "--dir", kept)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "c::loss::torch::float32::cpu" and "torch-2.13.0" in lines[1] and "7.5 ULP" in lines[2]
    assert run("history", "nothing*", "--dir", kept).returncode == 1
    drawn = run("history", "c::loss::*", "--dir", kept, "--plot", tmp_path / "h.png")
    assert drawn.returncode == 0 and (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    assert run("history", "c*", "--dir", tmp_path / "none").returncode == 2
