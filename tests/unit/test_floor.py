"""The floor under the matrix: calls recorded as the matrix makes them, replayed bare in a
fresh process; the processes `run` starts, with their workers and the shared reference cache."""
import inspect
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conformance import adapters, frameworks, orchestrate
from conformance.bench import calls, floor
from conformance.core import reference_cache

HERE = Path(__file__).resolve().parent
OP = "sparse_softmax_cross_entropy"


@pytest.fixture
def counting(tmp_path, monkeypatch):
    """The counting adapter importable here and in replay processes; its log of calls."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    made = tmp_path / "made.txt"
    monkeypatch.setenv("COUNTING_LOG", str(made))
    yield made
    adapters.configure()  # the next test starts from the default registry


def test_without_the_variable_an_adapter_is_not_wrapped(counting, monkeypatch):
    monkeypatch.delenv(calls.CALL_LOG_VARIABLE, raising=False)
    adapters.configure(["counting_adapter:Counting"])
    assert not isinstance(adapters.load("counting-kernel"), calls.RecordedAdapter)


def test_a_recorded_adapter_keeps_its_signatures_and_records_each_call(counting, tmp_path, monkeypatch):
    monkeypatch.setenv(calls.CALL_LOG_VARIABLE, str(tmp_path))
    adapters.configure(["counting_adapter:Counting"])
    adapter = adapters.load("counting-kernel")
    assert isinstance(adapter, calls.RecordedAdapter)
    assert list(inspect.signature(adapter.loss).parameters) == ["op", "prediction", "labels", "options", "dtype",
                                                                "device"]
    assert adapter.framework == "counting-kernel" and adapter.version() == "1.0"
    adapter.loss(OP, np.zeros((2, 3)), np.array([0, 2]), {"reduction": "sum"}, "float64", "cpu")
    header, frames = calls.read(next(tmp_path.glob("calls-*.pkl")))
    assert header["targets"] == ["counting_adapter:Counting"]
    [(framework, composed, method, args, kwargs, seconds)] = frames
    assert (framework, composed, method, args[0], args[3]) == (
        "counting-kernel", False, "loss", OP, {"reduction": "sum"})
    assert np.array_equal(args[2], [0, 2]) and seconds >= 0


def test_the_floor_replays_the_matrix_calls_in_a_fresh_process(counting, tmp_path):
    def run_matrix(timings):  # stands for `run`: a process that loads an adapter and calls it
        adapters.configure(["counting_adapter:Counting"])
        adapter = adapters.load("counting-kernel")
        for rows in (1, 2, 3):
            adapter.loss(OP, np.zeros((rows, 4)), np.zeros(rows, np.int64), {}, "float64", "cpu")
        timings[frameworks.process_label(frameworks.MAIN_PROCESS)] = 1.0
        return 0

    assert floor.measure(run_matrix, tmp_path / "floor.json") == 0
    made = counting.read_text().splitlines()
    assert len(made) == 6 and made[:3] == made[3:]  # the same three calls, made again by the replay
    [row] = json.loads((tmp_path / "floor.json").read_text())["processes"]
    assert row["process"] == "keras-tensorflow" and row["calls"] == 3 and row["matrix_s"] == 1.0
    assert 0 < row["floor_s"] < 60
    assert calls.CALL_LOG_VARIABLE not in os.environ


def test_the_table_gives_each_process_and_the_ratio_of_the_totals():
    rows = [{"process": "keras-tensorflow", "calls": 10, "matrix_s": 30.0, "floor_s": 20.0, "in_calls_s": 15.0},
            {"process": "keras-torch", "calls": 5, "matrix_s": 10.0, "floor_s": 5.0, "in_calls_s": 2.0}]
    lines = [" ".join(line.split()) for line in floor.render(rows, 41.0).splitlines()]
    assert "keras-tensorflow 10 30.0 20.0 1.50 15.0 s (summed over workers)" in lines
    assert "keras-torch 5 10.0 5.0 2.00 2.0 s (summed over workers)" in lines
    assert "all 15 40.0 25.0 1.60" in lines


def test_a_log_is_filed_under_the_process_that_wrote_it():
    assert floor.process_label_of({"environ": {"KERAS_BACKEND": "", frameworks.PROCESS_VARIABLE: ""}}) \
        == "keras-tensorflow"
    assert floor.process_label_of({"environ": {"KERAS_BACKEND": "jax", frameworks.PROCESS_VARIABLE: ""}}) \
        == "keras-jax"
    assert floor.process_label_of({"environ": {"KERAS_BACKEND": "tensorflow",
                                               frameworks.PROCESS_VARIABLE: "paddle"}}) == "paddle"


def test_run_gives_workers_to_the_heavy_processes_only_and_one_reference_cache_to_all(monkeypatch, tmp_path):
    started = []

    def call(command, env):
        started.append((command, env))
        assert Path(env[reference_cache.CACHE_VARIABLE]).is_dir()  # exists while the processes run
        return 0

    monkeypatch.delenv(reference_cache.CACHE_VARIABLE, raising=False)
    monkeypatch.setattr(orchestrate.subprocess, "call", call)
    timings = {}
    orchestrate.run(out_dir=tmp_path, workers=2, history_dir="", timings=timings)
    workers = {env["KERAS_BACKEND"] + env[frameworks.PROCESS_VARIABLE]: "-n" in command for command, env in started}
    assert workers == {"tensorflow": True, "jax": True, "torch": False, "numpy": False, "tensorflowpaddle": False}
    caches = {env[reference_cache.CACHE_VARIABLE] for _, env in started}
    assert len(caches) == 1 and not Path(caches.pop()).exists()  # shared by all, gone after the run
    assert set(timings) == {frameworks.process_label(p) for p in frameworks.PROCESSES}
