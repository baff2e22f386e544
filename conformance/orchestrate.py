"""Run the whole conformance matrix: one pytest process per Keras 3 backend, and one per
framework that needs its own (conformance/frameworks.py), then merge.

Keras fixes its backend when it is imported, so keras-jax, keras-torch and keras-numpy each
need a process with KERAS_BACKEND set before import. The main process (tensorflow backend)
checks every other framework, plug-ins included, but those with a process of their own.
`--framework X` (given to `run` or after its `--`) runs only the processes that check X. `--require all` fails any framework that cannot
be imported, in whichever process checks it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance import adapters, frameworks
from conformance.core import manifest as divergences
from conformance.core import reference_cache
from conformance.pytest import suite
from conformance.results import history
from conformance.results import records as results
from conformance.results import summary

SUITE = Path(suite.__file__).resolve().parent


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


def run(required=(), out_dir="results", extra=(), workers=2, selected=(), adapter_targets=(), device="all",
        shard=None, history_dir="results/history", timings=None):
    """The matrix; `timings`, where given, receives each process's wall seconds by its label."""
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
    parts, failing_runs = [], []
    # References computed by one process are read by the next (by content; gone after the run).
    with tempfile.TemporaryDirectory(prefix="xent-references-") as cache:
        shared = {reference_cache.CACHE_VARIABLE: os.environ.get(reference_cache.CACHE_VARIABLE) or cache}
        for k, (backend, mine) in enumerate(steps, 1):
            here = workers if backend in frameworks.PARALLEL_PROCESSES else 1
            command = pytest_command(backend, mine, required, out_dir, extra, here, adapter_targets, device, shard)
            checked = ", ".join(mine) if mine else "every framework but those with a process of their own"
            title = f"[{k}/{len(steps)}] " + (f"{backend}'s own process" if backend in frameworks.OWN_PROCESSES
                                              else f"Keras on {backend}")
            print(f"\n== {title}: {checked}", flush=True)
            started = time.perf_counter()
            env = {"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ, **shared, **frameworks.process_environment(backend)}
            code = subprocess.call(command, env=env)
            seconds = time.perf_counter() - started
            print(f"== {title}: done in {seconds:.0f} s", flush=True)
            if timings is not None:
                timings[frameworks.process_label(backend)] = seconds
            if code not in (0, 1):  # 1 is failing checks, reported below; anything else is broken
                print(f"pytest exited {code} for the {frameworks.process_label(backend)} process: "
                      f"{' '.join(command[2:])}", file=sys.stderr)
                return 2
            if code == 1:
                failing_runs.append(backend)
            parts.append(out_dir / f"conformance-{frameworks.process_label(backend)}.json")
    complete = not (list(selected) + named) and not shard and not any(
        a == "--cases" or a.startswith("--cases=") for a in extra)
    status = summarize(parts, out_dir / "conformance.json", failing_runs, complete)
    for line in broken:
        print(f"ADAPTER ERROR {line}")
    merged = out_dir / "conformance.json"
    if history_dir and merged.exists():
        print(f"kept as {history.keep(merged, Path(history_dir))} (xent-conformance history PATTERN)")
    print(f"\nnext: xent-conformance report {merged} --format html -o {out_dir / 'report.html'}"
          f"   (then open {out_dir / 'report.html'}; `diff` compares two runs)")
    return max(status, 1) if broken else status


def summarize(parts, merged, failing_runs, complete=True):
    """Merge the processes' results, print the matrix, and the exit status of the run."""
    documents = [(str(p), results.read(p)) for p in parts if p.exists()]
    env, records = results.merge(documents)
    results.write(merged, env, records)
    print(f"\n== conformance matrix ({merged})\n")
    print(summary.render_text(records))
    matched = {r.get("manifest") for r in records} | set(env.get("manifest_matched", []))
    ran = {r["framework"] for r in records}
    unmatched = [e.id for e in divergences.load() if e.id not in matched and any(e.may_cover(f) for f in ran)]
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
    return 1 if bad or failing_runs else 0
