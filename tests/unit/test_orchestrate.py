"""`run` survives a dead process: a crash, a hang or an abnormal exit of one pytest process is
reported by name with its exit status, the other processes still run, the merge marks the
missing checks as errors, and the run exits 2. Fake processes stand in for pytest."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import adapters, frameworks, orchestrate
from conformance.core import checks, machine
from conformance.pytest.plugin import FAST_EXIT_VARIABLE
from conformance.results import merge_processes
from conformance.results import records as results

LABELS = [frameworks.process_label(p) for p in frameworks.PROCESSES]
HERE = [d for d in checks.DEVICES if machine.might_have(d)]  # the devices whose checks a dead process loses
MAIN = frameworks.process_label(frameworks.MAIN_PROCESS)

# argv: behaviour, results path, framework id, a file for the pid of a child it starts
FAKE = r"""
import json, os, resource, signal, subprocess, sys, time
behaviour, path, framework, pidfile = sys.argv[1:5]

def write(outcome="passed"):
    record = {"id": f"c::loss::{framework}::float32::cpu", "case": "c", "op": "sigmoid_cross_entropy",
              "quantity": "loss", "framework": framework, "dtype": "float32", "device": "cpu",
              "outcome": outcome, "reason": None, "message": ""}
    with open(path, "w") as handle:
        json.dump({"schema": 1, "environment": {"frameworks": {}}, "results": [record]}, handle)

def die(sig):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), sig)

if behaviour in ("pass", "fail"):
    write("passed" if behaviour == "pass" else "failed")
    sys.exit(0 if behaviour == "pass" else 1)
if behaviour == "abort-after-writing":  # the issue: results written, then a double free at exit
    write()
    die(signal.SIGABRT)
if behaviour == "segfault-mid-write":
    open(path, "w").write('{"schema": 1, "resu')
    die(signal.SIGSEGV)
if behaviour == "unreadable":
    open(path, "w").write("not json")
    sys.exit(0)
if behaviour == "hang":  # with a child of its own, as pytest-xdist workers are
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(pidfile, "w").write(str(child.pid))
    time.sleep(600)
sys.exit(int(behaviour.removeprefix("exit")))
"""


def fake(behaviours, tmp_path, seen):
    """A stand-in for pytest: what each process does, by its label; `seen` gets (label, env)."""
    def command_for(command, env):
        path = command[command.index("--results") + 1]
        label = Path(path).stem.removeprefix("conformance-")
        seen.append((label, env))
        framework = "numpy" if label == MAIN else label
        return [sys.executable, "-c", FAKE, behaviours.get(label, "pass"), path, framework,
                str(tmp_path / f"{label}.pid")]
    return command_for


def merged(out):
    return {r["id"]: r for r in json.loads((out / "conformance.json").read_text())["results"]}


def process_ids(label, known=None):
    ids = frameworks.ids_in_process(frameworks.MAIN_PROCESS, known or adapters.registry().known_ids()) \
        if label == MAIN else [label]
    return {f"{label}::process::{f}::{d}" for f in ids for d in HERE}


def test_a_crash_and_an_abnormal_exit_leave_the_other_processes_running(tmp_path, monkeypatch, capsys):
    seen = []
    command_for = fake({MAIN: "abort-after-writing", "keras-torch": "exit3"}, tmp_path, seen)
    # the seam test_floor uses: subprocess.call, which a run without --process-timeout goes through
    monkeypatch.setattr(orchestrate.subprocess, "call",
                        lambda command, env: subprocess.run(command_for(command, env), env=env).returncode)
    code = orchestrate.run(out_dir=tmp_path / "out", history_dir="")
    out, err = capsys.readouterr()
    assert code == 2
    assert [label for label, _ in seen] == LABELS  # every process ran
    records = merged(tmp_path / "out")
    assert {"c::loss::numpy::float32::cpu", "c::loss::keras-jax::float32::cpu", "c::loss::paddle::float32::cpu",
            "c::loss::keras-numpy::float32::cpu"} <= set(records)  # the crashed process's results are kept
    died = {i: r for i, r in records.items() if i.startswith(f"{MAIN}::process::")}
    assert set(died) == process_ids(MAIN)
    assert all(r["outcome"] == "error" and r["reason"] == "process-died" and r["exit_status"] == -6
               and r["signal"] == "SIGABRT" and r["results_written"] == 1 for r in died.values())
    exited = records["keras-torch::process::keras-torch::cpu"]
    assert (exited["outcome"], exited["reason"], exited["exit_status"]) == ("error", "process-exited", 3)
    lines = [line for line in err.splitlines() if line.startswith("PROCESS")]
    assert len(lines) == 2
    assert f"the {MAIN} process died (exit -6, SIGABRT); 1 results written and kept" in lines[0]
    assert "the keras-torch process exited abnormally (exit 3, internal error); no results written" in lines[1]
    assert "PROCESS  the keras-torch process exited abnormally" in out  # recalled after the matrix
    gate = subprocess.run([sys.executable, "-m", "conformance", "gate", str(tmp_path / "out/conformance.json")],
                          capture_output=True, text=True)
    assert gate.returncode == 1 and f"ERROR    {MAIN}::process::numpy::cpu: the {MAIN} process died" in gate.stdout
    assert exited["rerun"].startswith("KERAS_BACKEND=torch XENT_CONFORMANCE_PROCESS='' ")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def test_a_hung_process_is_killed_with_its_children_and_recorded(tmp_path, capsys):
    seen = []
    command_for = fake({"keras-jax": "hang"}, tmp_path, seen)
    started = time.monotonic()
    code = orchestrate.run(out_dir=tmp_path / "out", history_dir="", process_timeout=5,
                           launch=lambda command, env, timeout: orchestrate.launch_process(
                               command_for(command, env), env, timeout))
    assert time.monotonic() - started < 60
    assert code == 2 and [label for label, _ in seen] == LABELS
    hung = merged(tmp_path / "out")["keras-jax::process::keras-jax::cpu"]
    assert (hung["outcome"], hung["reason"], hung["exit_status"], hung["results_written"]) == \
        ("error", "process-hung", None, None)
    assert "the keras-jax process hung (killed after 5 s (--process-timeout)); no results written" in hung["message"]
    child = int((tmp_path / "keras-jax.pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)  # killed with its process group, as xdist workers would be
    assert "PROCESS  the keras-jax process hung" in capsys.readouterr().err


def run_fake(tmp_path, behaviours, extra=(), **kwargs):
    seen = []
    command_for = fake(behaviours, tmp_path, seen)
    code = orchestrate.run(out_dir=tmp_path / "out", history_dir="", extra=extra,
                           launch=lambda command, env, timeout: orchestrate.launch_process(
                               command_for(command, env), env, timeout), **kwargs)
    return code, seen


def test_results_of_an_earlier_run_never_pass_for_a_dead_process(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = {"id": "old::loss::paddle::float32::cpu", "case": "old", "op": "sigmoid_cross_entropy",
             "framework": "paddle", "outcome": "passed", "reason": None}
    results.write(out / "conformance-paddle.json", {}, [stale])
    code, _ = run_fake(tmp_path, {"paddle": "segfault-mid-write", "keras-numpy": "unreadable"})
    records = merged(out)
    assert code == 2 and "old::loss::paddle::float32::cpu" not in records
    died = records["paddle::process::paddle::cpu"]
    assert died["signal"] == "SIGSEGV" and "its results file is unreadable (not valid JSON" in died["message"]
    unreadable = records["keras-numpy::process::keras-numpy::cpu"]  # exit 0, but nothing to read
    assert unreadable["reason"] == "results-unreadable" and unreadable["exit_status"] == 0


def test_no_tests_collected_is_an_error_in_a_whole_run_and_a_note_in_a_selection(tmp_path, capsys):
    code, _ = run_fake(tmp_path / "whole", {"keras-numpy": "exit5"})
    assert code == 2
    assert merged(tmp_path / "whole/out")["keras-numpy::process::keras-numpy::cpu"]["reason"] == "process-no-tests"
    code, _ = run_fake(tmp_path / "some", {"keras-numpy": "exit5"}, extra=["-k", "sigmoid"])
    assert code == 0 and not any("::process::" in i for i in merged(tmp_path / "some/out"))
    assert "the keras-numpy process collected no tests (exit 5, no tests collected)" in capsys.readouterr().err
    code, _ = run_fake(tmp_path / "none", {label: "exit5" for label in LABELS}, extra=["-k", "nothing"])
    assert code == 2 and "no process collected a test" in capsys.readouterr().out


def test_failing_checks_still_exit_1_and_a_usage_error_stops_the_run_at_once(tmp_path, capsys):
    code, seen = run_fake(tmp_path / "a", {"keras-jax": "fail"})
    assert code == 1 and len(seen) == len(LABELS)
    code, seen = run_fake(tmp_path / "b", {MAIN: "exit4"})
    assert code == 2 and len(seen) == 1  # the others would refuse the same arguments
    assert "usage error" in capsys.readouterr().err


def test_run_asks_its_processes_to_exit_fast_unless_the_user_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv(FAST_EXIT_VARIABLE, raising=False)
    _, seen = run_fake(tmp_path / "a", {}, selected=["keras-jax"])
    assert [env[FAST_EXIT_VARIABLE] for _, env in seen] == ["1"]
    monkeypatch.setenv(FAST_EXIT_VARIABLE, "0")  # to watch the frameworks' own teardown
    _, seen = run_fake(tmp_path / "b", {}, selected=["keras-jax"])
    assert [env[FAST_EXIT_VARIABLE] for _, env in seen] == ["0"]


def test_launch_reports_a_signal_as_a_negative_status(tmp_path):
    abort = [sys.executable, "-c", "import resource, os; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.abort()"]
    assert orchestrate.launch_process(abort, dict(os.environ)) == -6
    assert orchestrate.launch_process(abort, dict(os.environ), timeout=30) == -6
    assert orchestrate.launch_process([sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                                      timeout=0.5) is None


def test_the_same_dead_process_in_two_runs_merges_into_one_record():
    one = merge_processes.ProcessEnd("paddle", ["paddle"], ["cpu"], -11).records()
    two = merge_processes.ProcessEnd("paddle", ["paddle"], ["cpu"], None, timeout=60).records()
    _, records = results.merge([("cpu.json", {"environment": {}, "results": one}),
                                ("gpu.json", {"environment": {}, "results": two})])
    assert len(records) == 1 and "SIGSEGV" in records[0]["message"] and "killed after 60 s" in records[0]["message"]
    check = {"id": "c::loss::paddle::float32::cpu", "outcome": "passed"}
    with pytest.raises(results.ResultsError):  # a check twice is still an error
        results.merge([("a", {"environment": {}, "results": [check]}), ("b", {"environment": {}, "results": [check]})])


def test_process_records_go_through_summary_report_and_diff(tmp_path):
    dead = merge_processes.ProcessEnd(MAIN, ["numpy", "torch"], ["cpu", "cuda"], -6).records()
    check = {"id": "c::loss::torch::float32::cpu", "case": "c", "op": "sigmoid_cross_entropy", "quantity": "loss",
             "kind": "reference", "framework": "torch", "dtype": "float32", "device": "cpu", "outcome": "passed",
             "reason": None, "max_ulp_err": 1.0, "message": "", "file": "cases/x.yaml"}
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    results.write(base, {"frameworks": {}}, [check])
    results.write(new, {"frameworks": {}}, dead)
    run = lambda *args: subprocess.run([sys.executable, "-m", "conformance", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True)
    summary = run("summary", new)
    assert summary.returncode == 0 and "(process)" in summary.stdout and "4 error" in summary.stdout
    for fmt in ("md", "html"):
        report = run("report", new, "--format", fmt, "-o", tmp_path / f"r.{fmt}")
        assert report.returncode == 0, report.stderr[-2000:]
        assert f"{MAIN}::process::torch::cuda" in (tmp_path / f"r.{fmt}").read_text()
    diff = run("diff", base, new)
    assert diff.returncode == 1 and "c::loss::torch::float32::cpu" in diff.stdout  # its check went missing


def test_process_timeout_is_an_option_of_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--help"], capture_output=True, text=True)
    assert "--process-timeout SECONDS" in done.stdout
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--process-timeout", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "--process-timeout 0" in done.stderr


def test_the_next_line_names_a_command_the_user_can_type(monkeypatch, tmp_path):
    from conformance import orchestrate

    merged, page = tmp_path / "conformance.json", tmp_path / "report.html"
    monkeypatch.setattr(orchestrate.sys, "prefix", "/home/me/repo/.nox/conformance")
    assert orchestrate.report_command(merged, page).startswith(f"nox -s report -- {merged}")
    monkeypatch.setattr(orchestrate.sys, "prefix", "/home/me/venv")
    assert orchestrate.report_command(merged, page) == f"xent-conformance report {merged} --format html -o {page}"

def test_an_option_is_read_in_both_of_pytests_forms():
    args = ["-q", "--manifest", "a.yaml", "--cases=c.yaml", "--manifest=b.yaml", "--manifest"]
    assert orchestrate.option_values(args, "--manifest") == ["a.yaml", "b.yaml"]  # a trailing bare option has no value
    assert orchestrate.option_values(args, "--cases") == ["c.yaml"]
    assert orchestrate.option_values(["--manifests=x"], "--manifest") == []
