"""xent-conformance (or python -m conformance) run | floor | validate | merge | summary | gate | report | diff |
hunt | ...

Exit codes: 0 fine, 1 a regression or invalid case found by diff, 2 a missing, unreadable or
invalid input (with a one-line reason, never a traceback).
"""
import argparse
import json
import os
import sys

from conformance.results import history
from conformance.results import records as results
from conformance.results import summary
from conformance.cases import CaseError, case_files, load_case_file


class InputError(Exception):
    pass


def cmd_validate(args):
    problems, count = [], 0
    try:
        files = case_files(args.paths)
    except CaseError as exc:
        raise InputError(str(exc)) from None
    if not files:
        raise InputError(f"no case files under {' '.join(args.paths)}")
    names = {}
    for path in files:
        try:
            for case in load_case_file(path):
                if case.name in names:
                    problems.append(f"{path}: case {case.name!r}: key 'name': also used in {names[case.name]}")
                names[case.name] = path
                count += 1
        except CaseError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(f"{count} cases in {len(files)} file(s): valid")
    return 0


def _read_all(paths):
    try:
        return [(p, results.read(p)) for p in paths]
    except results.ResultsError as exc:
        raise InputError(str(exc)) from None


def cmd_merge(args):
    try:
        env, records = results.merge(_read_all(args.inputs))
    except results.ResultsError as exc:
        raise InputError(str(exc)) from None
    results.write(args.output, env, records)
    print(f"{len(records)} checks from {len(args.inputs)} file(s) -> {args.output}")
    return 0


def cmd_summary(args):
    _, records = results.merge(_read_all(args.inputs))
    print(summary.render_text(records))
    return 0


def cmd_gate(args):
    """Exit 1 when any check failed, errored or unexpectedly passed (a fixed divergence)."""
    _, records = results.merge(_read_all(args.inputs))
    bad = results.failing(records)
    for record in bad:
        first_line = ((record.get("message") or "").splitlines() or [""])[0]
        print(f"{record['outcome'].upper():8s} {record['id']}: {first_line}")
    skipped = sum(r["outcome"] == "skipped" for r in records)
    print(f"gate: {len(records)} checks, {len(bad)} failing, {skipped} skipped (counted, see the summary)")
    return 1 if bad else 0


def cmd_run(args):
    from conformance import constraints, orchestrate

    if args.shard:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            raise InputError(f"--shard {args.shard}: expected K/N with 1 <= K <= N, e.g. 2/4")
    timeout = _process_timeout(args)

    if args.constraints:
        try:
            if constraints.install(args.constraints) != 0:
                raise InputError(f"{args.constraints}: pip could not install these pins")
        except constraints.ConstraintsError as exc:
            raise InputError(str(exc)) from None

    pytest_args = [*args.pytest_args, *_modes_arguments(args.modes), *_manifest_arguments(args.manifest)]
    code = orchestrate.run(args.require, args.results_dir, pytest_args, args.workers, args.framework,
                           args.adapter, args.device, args.shard, args.history, process_timeout=timeout)
    return _modes_no_framework_runs(args.modes, args.results_dir) or code


def _modes_arguments(values):
    """--modes for every process; each runs the modes its frameworks have, and the run as a
    whole refuses a mode that none of them has (_modes_no_framework_runs)."""
    from conformance.adapters import mode_selection

    modes = mode_selection.mode_names(values)
    if not modes:
        return []
    os.environ[mode_selection.CHECKED_BY_RUN] = "1"  # inherited by the processes the run starts
    return ["--modes", ",".join(modes)]


def _modes_no_framework_runs(values, results_dir):
    """2, naming them, when --modes asked for modes that no framework of the run declares (the
    environment of the merged results lists each framework's modes); else 0."""
    from pathlib import Path

    from conformance.adapters import mode_selection

    modes, path = mode_selection.mode_names(values), Path(results_dir) / "conformance.json"
    if not modes or not path.exists():
        return 0
    frameworks = results.read(path).get("environment", {}).get("frameworks", {})
    declared = {mode for info in frameworks.values() if isinstance(info, dict) for mode in info.get("modes", [])}
    refused = mode_selection.refusal(modes, declared, "of this run")
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    return 0


def _process_timeout(args):
    if args.process_timeout is not None and not 0 < args.process_timeout < float("inf"):
        raise InputError(f"--process-timeout {args.process_timeout:g}: expected a number of seconds above 0")
    return args.process_timeout


def _manifest_arguments(paths) -> list[str]:
    """--manifest for every process, each path checked here first so a typo is one line."""
    from conformance.core import manifest

    try:
        manifest.load_all(paths)
    except manifest.ManifestError as exc:
        raise InputError(str(exc)) from None
    return [f"--manifest={path}" for path in paths]


def cmd_floor(args):
    from pathlib import Path

    from conformance import orchestrate
    from conformance.bench import floor

    timeout = _process_timeout(args)

    def run_matrix(timings):
        return orchestrate.run(args.require, args.results_dir,
                               [*args.pytest_args, *_modes_arguments(args.modes), *_manifest_arguments(args.manifest)],
                               args.workers, args.framework,
                               args.adapter, args.device, None, args.history, timings=timings,
                               process_timeout=timeout)

    try:
        return floor.measure(run_matrix, Path(args.out) if args.out else None)
    except floor.ReplayFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_report(args):
    from pathlib import Path

    from conformance.report import render as report

    documents = _read_all(args.inputs)
    env, records = results.merge(documents)
    sources = [(path, document.get("environment", {})) for path, document in documents]
    if args.output:
        try:
            Path(args.output).resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{args.output}: cannot create its folder ({exc.strerror})") from None
    text = report.render(env, records, args.format, output=args.output, sources=sources)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write ({exc.strerror})") from None
        print(f"report -> {args.output}")
    else:
        print(text)
    return 0


def cmd_diff(args):
    from conformance.results import diff

    (_, base), (_, new) = _read_all([args.base, args.new])
    changes = diff.diff(base["results"], new["results"])
    moved = diff.versions(base.get("environment"), new.get("environment"))
    text, regressed = diff.summary(changes, moved)
    print(text)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(diff.as_json(changes, moved), handle, indent=1)
        except OSError as exc:
            raise InputError(f"{args.json}: cannot write ({exc.strerror})") from None
    return 1 if regressed else 0


def cmd_history(args):
    from pathlib import Path

    rows = history.table(Path(args.dir), args.pattern)
    print(history.render(rows))
    if args.plot and rows:
        from conformance.report import plots

        ok, why = plots.available()
        if not ok:
            raise InputError(f"--plot: {why}")
        try:
            Path(args.plot).write_bytes(plots.history(rows))
        except OSError as exc:
            raise InputError(f"{args.plot}: cannot write ({exc.strerror})") from None
        print(f"plot -> {args.plot}")
    return 0 if rows else 1


def cmd_divergences(args):
    from conformance.core import manifest
    from conformance.report import manifest_doc

    try:
        entries = manifest.load() if args.core else manifest.load_all(args.manifest)
    except manifest.ManifestError as exc:
        raise InputError(str(exc)) from None
    records = results.merge(_read_all(args.inputs))[1] if args.inputs else None
    return _print_or_write(manifest_doc.render(entries, records), args.output, f"{len(entries)} manifest entries")


def cmd_schema(args):
    from conformance import schemas

    return _print_or_write(schemas.render(args.kind), args.output, f"{args.kind} schema")


def _print_or_write(text, output, what):
    """text on stdout, or into output with a line saying what went where."""
    if not output:
        print(text, end="")
        return 0
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(f"{output}: cannot write ({exc.strerror})") from None
    print(f"{what} -> {output}")
    return 0


def cmd_hunt(args):
    from conformance.hunt.command import hunt, HuntInputError

    try:
        return hunt(args.framework, args.op, args.dtype, args.quantity, args.budget, args.seed, args.out)
    except HuntInputError as exc:
        raise InputError(str(exc)) from None


def parser():
    top = argparse.ArgumentParser(prog="xent-conformance", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check case files; exit 2 naming file, case and key")
    p.add_argument("paths", nargs="+")
    p.set_defaults(run=cmd_validate)
    p = sub.add_parser("merge", help="one results file from several; a repeated check id is an error")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("inputs", nargs="+")
    p.set_defaults(run=cmd_merge)
    p = sub.add_parser("summary", help="print the op x framework matrix")
    p.add_argument("inputs", nargs="+")
    p.set_defaults(run=cmd_summary)
    p = sub.add_parser("run", help="the whole matrix: one pytest process per Keras backend, merged")
    _add_matrix_arguments(p)
    p.set_defaults(run=cmd_run)
    p = sub.add_parser("floor", help="the matrix beside its floor: the same framework calls replayed bare, timed")
    _add_matrix_arguments(p, shard=False, constraints=False)
    p.add_argument("--out", default="results/floor.json", help="the measurements as JSON ('' writes none)")
    p.set_defaults(run=cmd_floor)
    p = sub.add_parser("gate", help="exit 1 when any check failed, errored or xpassed")
    p.add_argument("inputs", nargs="+")
    p.set_defaults(run=cmd_gate)
    p = sub.add_parser("report", help="render results as markdown or HTML")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--format", choices=("md", "html"), default="md")
    p.add_argument("-o", "--output")
    p.set_defaults(run=cmd_report)
    p = sub.add_parser("diff", help="what moved between two runs; exit 1 on a regression")
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--json", metavar="PATH", help="also write the changes as JSON")
    p.set_defaults(run=cmd_diff)
    p = sub.add_parser("history", help="a check's outcome and ULP error across the runs kept")
    p.add_argument("pattern", help="check id pattern, e.g. 'sparse-offset-1e4::loss::jax::*'")
    p.add_argument("--dir", default=history.DEFAULT_DIR)
    p.add_argument("--plot", metavar="FILE.png", help="also draw the checks' ULP error across the runs")
    p.set_defaults(run=cmd_history)
    p = sub.add_parser("divergences", help="the known divergences as markdown (docs/divergences.md)")
    p.add_argument("inputs", nargs="*", help="results files: also table where each entry matched")
    p.add_argument("-o", "--output")
    p.add_argument("--manifest", action="append", default=[], metavar="PATH", help="also this manifest (repeatable)")
    p.add_argument("--core", action="store_true",
                   help="the suite's own manifest only, without the plug-ins' (docs/divergences.md)")
    p.set_defaults(run=cmd_divergences)
    p = sub.add_parser("schema", help="the JSON Schema of case files or of results files")
    p.add_argument("kind", choices=("cases", "results"))
    p.add_argument("-o", "--output")
    p.set_defaults(run=cmd_schema)
    p = sub.add_parser("hunt", help="search for the input a framework gets most wrong; write it as a case file")
    p.add_argument("--framework", required=True)
    p.add_argument("--op", required=True)
    p.add_argument("--dtype", required=True)
    p.add_argument("--quantity", default="loss", help="loss or grad_logits")
    p.add_argument("--budget", default="30", help="seconds to search (shrinking takes a fifth of them)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="case file to write (default hunt-<framework>-<op>-<dtype>.yaml here)")
    p.set_defaults(run=cmd_hunt)
    return top


def _add_matrix_arguments(p, shard=True, constraints=True):
    p.add_argument("--require", action="append", default=[], metavar="NAME", help="framework id, or all")
    p.add_argument("--framework", action="append", default=[], metavar="NAME",
                   help="check only this framework (repeatable); only the processes that check it run")
    p.add_argument("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                   help="also check this adapter (repeatable; see XENT_CONFORMANCE_ADAPTERS)")
    p.add_argument("--manifest", action="append", default=[], metavar="PATH",
                   help="also read this manifest of known divergences (repeatable; a plug-in's own entries)")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="devices to check; results of runs on different devices merge")
    if shard:
        p.add_argument("--shard", metavar="K/N", help="the K-th of N disjoint parts (CI jobs; `merge` joins them)")
    p.add_argument("--history", default=history.DEFAULT_DIR, metavar="DIR",
                   help="keep a copy of the merged results here, named by date and versions ('' keeps none)")
    if constraints:
        p.add_argument("--constraints", metavar="FILE",
                       help="first install the framework pins of this constraints file here (an upgrade gate)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--modes", action="append", default=[], metavar="MODE[,MODE]",
                   help="run only these modes (eager, jit, compile, function, xla, ...; default every mode)")
    p.add_argument("--workers", type=int, default=2, help="pytest-xdist workers per process")
    p.add_argument("--process-timeout", type=float, metavar="SECONDS",
                   help="kill a pytest process (and its workers) still running after this long and record it "
                        "as hung; the others still run (default: no limit)")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (InputError, results.ResultsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

