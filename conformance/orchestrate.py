"""Run the whole conformance matrix: one pytest process per Keras 3 backend, and one per
framework that needs its own (conformance/frameworks.py), then merge.

Keras fixes its backend when it is imported, so keras-jax, keras-torch and keras-numpy each
need a process with KERAS_BACKEND set before import. The main process (tensorflow backend)
checks every other framework, plug-ins included, but those with a process of their own.
`--framework X` (given to `run` or after its `--`) runs only the processes that check X. `--require all`
fails any framework that cannot be imported, in whichever process checks it.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from conformance import adapters, frameworks
from conformance.core import checks, machine
from conformance.core import manifest as divergences
from conformance.core import reference_cache
from conformance.pytest import suite
from conformance.pytest.plugin import FAST_EXIT_VARIABLE
from conformance.results import history, merge_processes
from conformance.results import records as results
from conformance.results import summary
from conformance.results.merge_processes import ProcessEnd

SUITE = Path(suite.__file__).resolve().parent
# How `run` starts one process: (command, environment, timeout in seconds or None) -> its exit
# status, negative for a signal, or None when it was killed for running past the timeout.
Launch = Callable[[list[str], dict[str, str], float | None], int | None]


def expand_required(names, known):
    """--require values -> framework ids; `all` is every known id (plug-ins included)."""
    required = []
    for name in names:
        if name == "all":
            required += list(known)
        elif name in known:
            required.append(name)
        else:
            raise ValueError(f"--require {name}: unknown framework id (known: all, {', '.join(known)})")
    return required


def take_framework_args(extra):
    """(framework ids named by --framework in the pytest arguments, the other arguments)."""
    named, rest, args = [], [], list(extra)
    while args:
        arg = args.pop(0)
        if arg == "--framework" and args:
            named.append(args.pop(0))
        elif arg.startswith("--framework="):
            named.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return named, rest


def plan(selected, known):
    """[(process name, framework ids for it or None for the main process's default set)]."""
    if not selected:
        return [(process, None if process == frameworks.MAIN_PROCESS else frameworks.ids_in_process(process, known))
                for process in frameworks.PROCESSES]
    unknown = [f for f in selected if f not in known and f != "keras"]
    if unknown:
        raise ValueError(f"--framework {unknown[0]}: unknown framework id (known: {', '.join(known)})")
    steps = []
    for process in frameworks.PROCESSES:
        mine = frameworks.ids_in_process(process, [f for f in selected if f in known])
        if mine:
            steps.append((process, mine))
    return steps


def pytest_command(backend, mine, required, out_dir, extra, workers, adapter_targets=(), device="all", shard=None):
    label = frameworks.process_label(backend)
    # -rfE: the plugin counts skips and known divergences; pytest lists failures and errors only.
    command = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-rfE", "--disable-warnings",
               "-p", "no:cacheprovider",
               "--results", str(out_dir / f"conformance-{label}.json"),
               "--junitxml", str(out_dir / f"junit-{label}.xml"), "-o", f"junit_suite_name={label}"]
    if mine is not None:
        command += [f"--framework={f}" for f in mine]
    required_here = [r for r in required if frameworks.process_of(r) == backend and (mine is None or r in mine)]
    command += [f"--require={r}" for r in required_here]
    if backend == frameworks.MAIN_PROCESS:
        command += [f"--adapter={target}" for target in adapter_targets]
    if device != "all":
        command += ["--device", device]
    if shard:
        command += ["--shard", shard]
    if workers > 1:
        command += ["-n", str(workers)]
    return command + list(extra)


def launch_process(command: list[str], env: dict[str, str], timeout: float | None = None) -> int | None:
    """Run one pytest process to its end: its exit status (negative: the signal that ended it),
    or None when it ran past `timeout` seconds and was killed with its process group."""
    if timeout is None:
        return subprocess.call(command, env=env)  # in the terminal's process group: Ctrl-C reaches it
    # A session of its own, so that a hang is killed with its pytest-xdist workers.
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return None
    except KeyboardInterrupt:  # outside the terminal's group, it never saw the Ctrl-C: pass it on
        _kill_group(process, first=signal.SIGINT, grace=10)
        raise


def _kill_group(process: subprocess.Popen, first: int = signal.SIGKILL, grace: float = 0) -> None:
    """Signal the process's whole group, then SIGKILL whatever is left of it after grace seconds."""
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break  # nothing of the group is left
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    process.wait()


def _read_results(end: ProcessEnd, path: Path):
    """The document a process wrote (None when none could be read); `end` learns how many."""
    if not path.exists():
        return None
    try:
        document = results.read(path)
    except results.ResultsError as exc:
        end.unreadable = str(exc).removeprefix(f"{path}: ")
        return None
    end.written = len(document["results"])
    return document


def _remove_stale(*paths: Path) -> None:
    """Files of an earlier run must not pass for those of a process that died before writing."""
    for path in paths:
        path.unlink(missing_ok=True)


def run(required=(), out_dir="results", extra=(), workers=2, selected=(), adapter_targets=(), device="all",
        shard=None, history_dir=history.DEFAULT_DIR, timings=None, process_timeout: float | None = None,
        launch: Launch = launch_process) -> int:
    """The matrix; `timings`, where given, receives each process's wall seconds by its label.

    A process that crashes, hangs past `process_timeout` seconds or exits abnormally is
    reported and stands in the merge as error records; the other processes still run, and the
    run exits 2. `launch` starts one process (tests replace it).
    """
    registry = adapters.configure(adapter_targets)
    broken = list(registry.broken)  # reported and failed at the end; every other check still runs
    for line in broken:
        print(f"ADAPTER ERROR {line}", file=sys.stderr)
    known = registry.known_ids()
    named, extra = take_framework_args(extra)
    try:
        steps = plan(list(selected) + named, known)
        required = expand_required(required, known)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Any selection (frameworks, a shard, pytest arguments) may leave a process nothing to run.
    selective = bool(list(selected) + named or shard or extra)
    # the devices whose checks a dead process loses: those it would have run here
    asked = checks.DEVICES if device == "all" else (device,)
    devices = [d for d in asked if machine.might_have(d)] or list(asked)
    documents, failing_runs, ends = [], [], []
    # References computed by one process are read by the next (by content; gone after the run).
    with tempfile.TemporaryDirectory(prefix="xent-references-") as cache:
        shared = {reference_cache.CACHE_VARIABLE: os.environ.get(reference_cache.CACHE_VARIABLE) or cache}
        for k, (backend, mine) in enumerate(steps, 1):
            label = frameworks.process_label(backend)
            here = workers if backend in frameworks.PARALLEL_PROCESSES else 1
            command = pytest_command(backend, mine, required, out_dir, extra, here, adapter_targets, device, shard)
            checked = ", ".join(mine) if mine else "every framework but those with a process of their own"
            title = f"[{k}/{len(steps)}] " + (f"{backend}'s own process" if backend in frameworks.OWN_PROCESSES
                                              else f"Keras on {backend}")
            print(f"\n== {title}: {checked}", flush=True)
            part = out_dir / f"conformance-{label}.json"
            _remove_stale(part, out_dir / f"junit-{label}.xml")
            started = time.perf_counter()
            # FAST_EXIT: the child ends once its files are written, before native teardown can crash it.
            env = {"TF_CPP_MIN_LOG_LEVEL": "3", FAST_EXIT_VARIABLE: "1", **os.environ, **shared,
                   **frameworks.process_environment(backend)}
            code = launch(command, env, process_timeout)
            seconds = time.perf_counter() - started
            print(f"== {title}: done in {seconds:.0f} s", flush=True)
            if timings is not None:
                timings[label] = seconds
            rerun = " ".join([f"{name}={shlex.quote(env[name])}" for name in frameworks.process_environment(backend)]
                             + [shlex.join(command)])
            end = ProcessEnd(label, list(mine) if mine is not None else frameworks.ids_in_process(backend, known),
                             devices, code, seconds, process_timeout, selective=selective, rerun=rerun)
            document = _read_results(end, part)
            if k == 1 and code == merge_processes.USAGE_ERROR and document is None:
                # the same arguments go to every process: the others would refuse them too
                print(f"error: pytest refused the arguments of the {label} process (exit 4, usage error): "
                      f"{' '.join(command[2:])}", file=sys.stderr)
                return 2
            if document is not None:
                documents.append((str(part), document))
            if end.reason or code == merge_processes.NO_TESTS:
                print(f"PROCESS  {end.describe()}", file=sys.stderr, flush=True)
            if end.reason:
                print(f"  rerun it: {rerun}", file=sys.stderr, flush=True)
            if code == 1:
                failing_runs.append(backend)
            ends.append(end)
    complete = not (list(selected) + named) and not shard and not any(
        a == "--cases" or a.startswith("--cases=") for a in extra)
    manifests = option_values(extra, "--manifest")
    status = summarize(documents, out_dir / "conformance.json", failing_runs, complete, ends, manifests)
    for line in broken:
        print(f"ADAPTER ERROR {line}")
    merged = out_dir / "conformance.json"
    if history_dir and merged.exists():
        kept, default = history.keep(merged, Path(history_dir)), history_dir == history.DEFAULT_DIR
        print(f"kept as {kept} (xent-conformance history PATTERN{'' if default else f' --dir {history_dir}'})")
    print(f"\nnext: {report_command(merged, out_dir / 'report.html')}"
          f"   (then open {out_dir / 'report.html'}; `diff` compares two runs)")
    return max(status, 1) if broken else status


def option_values(args: list[str], option: str) -> list[str]:
    """Every value a pytest option is given in args, in both forms: `--option=V` and `--option V`."""
    values = []
    for i, arg in enumerate(args):
        if arg.startswith(option + "="):
            values.append(arg.partition("=")[2])
        elif arg == option and i + 1 < len(args):
            values.append(args[i + 1])
    return values


def summarize(documents, merged, failing_runs, complete=True, ends=(), manifests=()) -> int:
    """Merge the processes' results (and error records for those that did not finish), print
    the matrix, and the exit status of the run: 2 when a process did not finish or none ran
    a test, 1 when a check or test failed, else 0."""
    dead = [end for end in ends if end.reason]
    env, records = results.merge(list(documents) + [
        (f"the {end.label} process", {"environment": {}, "results": end.records()}) for end in dead])
    results.write(merged, env, records)
    print(f"\n== conformance matrix ({merged})\n")
    print(summary.render_text(records))
    matched = {r.get("manifest") for r in records} | set(env.get("manifest_matched", []))
    ran = {r["framework"] for r in records if not merge_processes.is_process_record(r)}  # a dead process ran nothing
    unmatched = [e.id for e in divergences.load_all(manifests)
                 if e.id not in matched and any(e.may_cover(f) for f in ran)]
    if not complete and unmatched:  # some frameworks or cases only: an entry may cover what did not run
        print(f"{len(unmatched)} manifest entries matched nothing in this partial run (not checked)")
    else:
        for entry_id in unmatched:
            print(f"manifest entry {entry_id!r} matched no check: remove it or fix its match")
    bad = results.failing(records)
    for record in bad:
        print(f"{record['outcome'].upper():8s} {record['id']}")
    for backend in failing_runs:  # invariant and property tests leave no records: their failures count here
        print(f"FAILED   tests in the {frameworks.process_label(backend)} process (see its output above)")
    for end in dead:  # last, where a person reads first: which process, how it ended, what it left
        print(f"PROCESS  {end.describe()}")
    nothing = ends and all(end.code == merge_processes.NO_TESTS for end in ends)
    if nothing:
        print("no process collected a test: the selection matched no check")
    if dead or nothing:
        return 2
    return 1 if bad or failing_runs else 0


def report_command(results_path: Path, report_path: Path) -> str:
    """The command that renders this run's report, as the user can type it: under nox (whose
    environment's xent-conformance is not on the user's PATH) the report session."""
    if "/.nox/" in sys.prefix.replace("\\", "/"):
        return f"nox -s report -- {results_path}   (writes {report_path} and report.md beside it)"
    return f"xent-conformance report {results_path} --format html -o {report_path}"
