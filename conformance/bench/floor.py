"""The matrix beside its floor, in one run: `xent-conformance floor`.

The floor is the least time the matrix's own framework calls can take here: each process's
calls (recorded as the matrix makes them, adapters/call_log.py) replayed in a fresh process of the
same kind, one per xdist worker and side by side as the workers ran, the processes one after
another as `run` starts them. A replay imports its frameworks, builds the inputs and calls;
jitted functions compile as often as the adapters compile them (JAX: once per op, options,
derivative, shapes and dtypes). The ratio matrix / floor is what the suite adds: references,
comparisons, the manifest, records, Hypothesis and pytest.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from conformance import frameworks
from conformance.bench import calls


class ReplayFailed(Exception):
    pass


def process_label_of(header: dict) -> str:
    environ = header["environ"]
    named = environ.get(frameworks.PROCESS_VARIABLE, "")
    process = named if named in frameworks.OWN_PROCESSES else (environ.get("KERAS_BACKEND") or frameworks.MAIN_PROCESS)
    return frameworks.process_label(process)


def logs_by_process(directory: Path) -> dict[str, list[tuple[Path, dict, list]]]:
    """process label -> [(log path, header, frames)] for each log that holds calls."""
    found = defaultdict(list)
    for path in sorted(directory.glob("calls-*.pkl")):
        header, frames = calls.read(path)
        if frames:
            found[process_label_of(header)].append((path, header, frames))
    return found


def replay_group(logs) -> float:
    """Wall seconds to replay a process's logs, each in its own fresh process, side by side."""
    started = time.perf_counter()
    running = []
    for path, header, _ in logs:
        env = {"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ}
        for name, value in header["environ"].items():  # the recorded process's kind, unset where it was unset
            env[name] = value
            if not value:
                del env[name]
        env.pop(calls.CALL_LOG_VARIABLE, None)
        output = open(path.with_suffix(".out"), "w+")  # noqa: SIM115 - the frameworks' start-up chatter kept apart
        running.append((subprocess.Popen([sys.executable, "-m", "conformance.bench.calls", str(path)], env=env,
                                         stdout=output, stderr=subprocess.STDOUT), output, path))
    codes = [process.wait() for process, _, _ in running]
    seconds = time.perf_counter() - started
    for (_, output, path), code in zip(running, codes):
        output.seek(0)
        lines = output.read().splitlines()
        output.close()
        print(lines[-1] if lines and code == 0 else "\n".join(lines[-20:]))
        if code:
            raise ReplayFailed(f"a replay of {path.name} exited {code}; the end of its output is above")
    return seconds


def measure(run_matrix, out: Path | None = None) -> int:
    """Run the matrix (run_matrix(timings) -> exit status) recording its calls, replay them, print both."""
    with tempfile.TemporaryDirectory(prefix="xent-calls-") as directory:
        os.environ[calls.CALL_LOG_VARIABLE] = directory
        timings: dict[str, float] = {}
        try:
            started = time.perf_counter()
            status = run_matrix(timings)
            matrix_total = time.perf_counter() - started
        finally:
            os.environ.pop(calls.CALL_LOG_VARIABLE, None)
        logs = logs_by_process(Path(directory))
        rows = []
        for label, seconds in timings.items():
            group = logs.get(label, [])
            print(f"\n== floor: replaying the {label} process's calls ({len(group)} processes)", flush=True)
            floor = replay_group(group) if group else 0.0
            rows.append({"process": label, "matrix_s": round(seconds, 1), "floor_s": round(floor, 1),
                         "calls": sum(len(frames) for _, _, frames in group),
                         "in_calls_s": round(sum(f[-1] for _, _, frames in group for f in frames), 1)})
    print(render(rows, matrix_total))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"processes": rows, "matrix_total_s": round(matrix_total, 1)}, indent=1) + "\n")
        print(f"written to {out}")
    return status


def render(rows, matrix_total: float) -> str:
    """The table: each process's matrix time, its floor and their ratio; the totals."""
    lines = ["", "== the matrix beside its floor (wall seconds)", "",
             f"{'process':14s} {'calls':>7s} {'matrix':>8s} {'floor':>8s} {'ratio':>6s}  calls within the matrix"]
    for row in rows:
        ratio = row["matrix_s"] / row["floor_s"] if row["floor_s"] else float("nan")
        lines.append(f"{row['process']:14s} {row['calls']:7d} {row['matrix_s']:8.1f} {row['floor_s']:8.1f} "
                     f"{ratio:6.2f}  {row['in_calls_s']:.1f} s (summed over workers)")
    matrix = sum(r["matrix_s"] for r in rows)
    floor = sum(r["floor_s"] for r in rows)
    ratio = matrix / floor if floor else float("nan")
    lines.append(f"{'all':14s} {sum(r['calls'] for r in rows):7d} {matrix:8.1f} {floor:8.1f} {ratio:6.2f}")
    lines.append(f"(the run, merge and summary included: {matrix_total:.1f} s)")
    return "\n".join(lines)
