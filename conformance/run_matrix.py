"""Run the whole conformance matrix: one pytest process per Keras 3 backend, then merge.

Keras fixes its backend when it is imported, so keras-jax, keras-torch and keras-numpy each
need a process with KERAS_BACKEND set before import. The first process (tensorflow backend)
also checks numpy, tensorflow, torch, jax and tf_keras. `--require all` fails any framework
that cannot be imported, in whichever process checks it.
"""
import os
import subprocess
import sys
from pathlib import Path

from conformance import FRAMEWORK_IDS, KERAS_BACKENDS, divergences, matrix, results


def expand_required(names):
    required = []
    for name in names:
        if name == "all":
            required += list(FRAMEWORK_IDS)
        elif name in FRAMEWORK_IDS:
            required.append(name)
        else:
            raise ValueError(f"--require {name}: unknown framework id (known: all, {', '.join(FRAMEWORK_IDS)})")
    return required


def pytest_command(backend, required, out_dir, extra, workers):
    keras_id = "keras-" + backend
    command = [sys.executable, "-m", "pytest", "tests/conformance", "-q", "-p", "no:cacheprovider",
               "--results", str(out_dir / f"conformance-{keras_id}.json"),
               "--junitxml", str(out_dir / f"junit-{keras_id}.xml"), "-o", f"junit_suite_name={keras_id}"]
    if backend == "tensorflow":
        mine = [r for r in required if not r.startswith("keras-") or r == keras_id]
    else:
        command += ["--framework", keras_id]
        mine = [keras_id] if keras_id in required else []
    command += [f"--require={r}" for r in mine]
    if workers > 1:
        command += ["-n", str(workers)]
    return command + list(extra)


def run(required=(), out_dir="results", extra=(), workers=2):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts, failing_runs = [], []
    for backend in KERAS_BACKENDS:
        command = pytest_command(backend, required, out_dir, extra, workers)
        print(f"\n== KERAS_BACKEND={backend}: {' '.join(command[2:])}", flush=True)
        code = subprocess.call(command, env={**os.environ, "KERAS_BACKEND": backend})
        if code not in (0, 1):  # 1 is failing checks, reported below; anything else is broken
            print(f"pytest exited {code} for KERAS_BACKEND={backend}", file=sys.stderr)
            return 2
        if code == 1:
            failing_runs.append(backend)
        parts.append(out_dir / f"conformance-keras-{backend}.json")
    documents = [(str(p), results.read(p)) for p in parts]
    env, records = results.merge(documents)
    merged = out_dir / "conformance.json"
    results.write(merged, env, records)
    print(f"\n== conformance matrix ({merged})\n")
    print(matrix.render_text(records))
    matched = {r.get("manifest") for r in records} | set(env.get("manifest_matched", []))
    for entry in divergences.load():
        if entry.id not in matched:
            print(f"manifest entry {entry.id!r} matched no check: remove it or fix its match")
    bad = results.failing(records)
    for record in bad:
        print(f"{record['outcome'].upper():8s} {record['id']}")
    for backend in failing_runs:  # invariant and property tests leave no records: their failures count here
        print(f"FAILED   tests in the KERAS_BACKEND={backend} process (see its output above)")
    return 1 if bad or failing_runs else 0
