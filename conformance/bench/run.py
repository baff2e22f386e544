"""Run the kernel benchmarks: one pytest process per framework, then the report.

    python -m conformance.bench.run [--profile quick|full] [--frameworks reference,torch,jax]
        [--devices cpu,cuda] [--sizes 8192x32000,...] [--classes 2,10] [--dtypes float32,bfloat16]
        [--threads K] [--adapter MODULE:ATTR] [--out results] [--storage DIR] [PYTEST ARGS...]

What `nox -s benchmark` runs. The frameworks are those the suite's adapters know (built-in,
entry-point and --adapter / XENT_CONFORMANCE_ADAPTERS plug-ins); every one gets its own process
with the KERAS_BACKEND that conformance.frameworks gives it (set before import), never
pytest-xdist, and the reference's own cost one more (`reference`). Each process writes
results/benchmarks/<framework>.json (pytest-benchmark's --benchmark-json) and the skips beside
it; conformance.bench.report turns them into results/benchmarks.md and results/benchmarks.png.
Arguments this script does not know go to every pytest process, e.g. --benchmark-save=NAME,
--benchmark-compare, --benchmark-compare-fail=median:10%, -k C32000. Saved runs go to
--storage (default .benchmarks/cpu, or .benchmarks/cuda-<GPU> on a GPU machine), one folder
per framework, so that --benchmark-compare finds the same framework's previous run.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conformance import adapters, frameworks as framework_table
from conformance.bench import report as bench_report
from conformance.adapters.discovery import ENV_VARIABLE
from conformance.bench.kernels import selectable_ids
from conformance.bench.settings import PROFILES

ROOT = Path(__file__).resolve().parents[2]


def device_kind():
    """cpu, or cuda-<first GPU's name> where nvidia-smi lists one: pytest-benchmark's machine
    folder does not tell GPUs apart, so baselines are kept per device."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=30)
            name = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.SubprocessError):
            name = ""
        if name:
            return "cuda-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    return "cpu"


def thread_env(threads):
    """Environment that caps the intra-op pools at `threads` (recorded, not hidden): the OpenMP,
    MKL and OpenBLAS pools here, a framework's own through its adapter (XENT_BENCH_THREADS)."""
    if not threads:
        return {}
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "XENT_BENCH_THREADS")}


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m conformance.bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default=os.environ.get("XENT_BENCH_PROFILE", "quick"))
    parser.add_argument("--frameworks", default="",
                        help="comma-separated framework ids, `reference` for the reference's own cost (default: all)")
    parser.add_argument("--devices", default="", help="cpu,cuda (default both; cuda skips without a GPU)")
    parser.add_argument("--sizes", default="", help="explicit NxC sizes instead of the profile's")
    parser.add_argument("--classes", default="", help="class counts of the profile (default 2,10,1000,32000,128256)")
    parser.add_argument("--dtypes", default="", help="float32 (default), bfloat16, float16, float64")
    parser.add_argument("--threads", type=int, default=0, help="cap intra-op threads (default: the frameworks' own)")
    parser.add_argument("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                        help="also benchmark this adapter's kernels (repeatable; see XENT_CONFORMANCE_ADAPTERS)")
    parser.add_argument("--out", default="results", help="folder for benchmarks.md, benchmarks.png, benchmarks/*.json")
    parser.add_argument("--storage", default="", help="pytest-benchmark storage root (default .benchmarks/<device>)")
    args, extra = parser.parse_known_args(argv)
    registry = adapters.configure(args.adapter)
    for line in registry.broken:
        print(f"ADAPTER ERROR {line}", file=sys.stderr)
    order = selectable_ids()
    frameworks = [f for f in args.frameworks.split(",") if f] or order
    unknown = [f for f in frameworks if f not in order]
    if unknown:
        parser.error(f"unknown framework id(s) {', '.join(unknown)} (known: {', '.join(order)})")
    if "-n" in extra or any(a.startswith(("--numprocesses", "-n=")) for a in extra):
        parser.error("benchmarks never run under pytest-xdist")
    return args, [f for f in order if f in frameworks], [a for a in extra if a != "--"]


def process_env(framework, threads):
    """The environment of one framework's process: its Keras backend, fixed before import
    (the reference's process is the main one), and the plug-in that provides it when only
    --adapter names it (entry points are found in every process)."""
    env = {**thread_env(threads), "XENT_BENCH_FRAMEWORK": framework,
           **framework_table.process_environment(framework_table.process_of(framework))}
    source = adapters.registry().sources.get(framework)
    if source is not None and source.origin == "--adapter":
        env[ENV_VARIABLE] = ",".join(filter(None, (os.environ.get(ENV_VARIABLE), source.target)))
    return env


def main(argv=None):
    args, frameworks, extra = parse(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    json_dir = out / "benchmarks"
    json_dir.mkdir(parents=True, exist_ok=True)
    storage = Path(args.storage or Path(".benchmarks") / device_kind())
    settings = {"XENT_BENCH_PROFILE": args.profile, "XENT_BENCH_DEVICES": args.devices,
                "XENT_BENCH_SIZES": args.sizes, "XENT_BENCH_CLASSES": args.classes, "XENT_BENCH_DTYPES": args.dtypes}
    started = time.perf_counter()
    runs = []
    for framework in frameworks:
        json_path = json_dir / f"{framework}.json"
        skips_path = json_dir / f"{framework}.skips.json"
        for stale in (json_path, skips_path):
            stale.unlink(missing_ok=True)
        own = process_env(framework, args.threads)
        env = {**os.environ, **{k: v for k, v in settings.items() if v}, **own, "XENT_BENCH_SKIPS": str(skips_path)}
        command = [sys.executable, "-m", "pytest", "tests/benchmarks", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                   "-W", "ignore::DeprecationWarning",
                   f"--benchmark-json={json_path}", f"--benchmark-storage=file://{storage / framework}",
                   "--benchmark-group-by=group", "--benchmark-sort=min",
                   "--benchmark-columns=median,iqr,min,rounds,iterations", "--benchmark-disable-gc", *extra]
        print(f"\n== {framework}: KERAS_BACKEND={own['KERAS_BACKEND']} XENT_BENCH_FRAMEWORK={framework} "
              f"pytest tests/benchmarks (profile {args.profile})", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, env=env, cwd=ROOT)
        runs.append((framework, code, time.perf_counter() - start, json_path, skips_path))
    total = time.perf_counter() - started
    # a process that timed nothing writes no JSON: its skips still count
    found = [str(j if j.exists() else s) for _, _, _, j, s in runs if j.exists() or s.exists()]
    status = 0
    if found:
        status = bench_report.main([*found, "-o", str(out / "benchmarks.md"), "--plot", str(out / "benchmarks.png")])
    print("\n== benchmark processes")
    for framework, code, seconds, path, _ in runs:
        verdict = {0: "ok", 5: "nothing selected"}.get(code, f"pytest exit {code}")
        print(f"  {framework:17s} {seconds:7.1f} s  {verdict}{'' if path.exists() else '  (no results)'}")
    print(f"  {'total':17s} {total:7.1f} s")
    bad = [f for f, code, *_ in runs if code not in (0, 5)]
    if bad:
        print(f"failed: {', '.join(bad)}", file=sys.stderr)
    broken = adapters.registry().broken
    for line in broken:
        print(f"ADAPTER ERROR {line}", file=sys.stderr)
    return 1 if bad or broken else status


if __name__ == "__main__":
    sys.exit(main())
