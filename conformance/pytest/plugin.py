"""pytest integration (registered through the pytest11 entry point): --cases, --results,
--require, --framework, --adapter; checks generated from cases.

Each check becomes one test whose id carries the framework id. Results are recorded by the
process that runs them; under pytest-xdist the workers hand theirs to the controller, which
alone writes the file.
"""
import argparse
import json
import os
import zlib
from collections import Counter
from pathlib import Path

import pytest

from conformance import adapters, compile_cache, data
from conformance.adapters import mode_selection
from conformance.core import checks, machine, tolerance
from conformance.core import manifest as divergences
from conformance.results import records as results
from conformance.results import summary
from conformance.cases import CaseError, load_cases
from conformance.core.runner import Runner

# TensorFlow's start-up chatter (a cuInit "error" on every machine without a GPU) hides the
# results; what matters reaches the suite as a Python exception.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
compile_cache.configure_environment()  # before any framework compiles: what one run compiles, the next reuses
DEFAULT_CASES = data.cases_dir()
_KEY: pytest.StashKey["Session"] = pytest.StashKey()


class Session:
    def __init__(self, config):
        self.config = config
        self.cases = None
        self.required = set()
        self.frameworks = []
        self.records = []
        self.environments = []
        self.runner = None
        self.absent = []  # checks on devices this machine lacks: recorded, never run as tests


def pytest_addoption(parser):
    group = parser.getgroup("xent-conformance")
    group.addoption("--cases", action="append", default=[], metavar="PATH",
                    help="case file or folder (repeatable); replaces cases/ when given")
    group.addoption("--results", metavar="PATH", help="write the JSON results of the checks here")
    group.addoption("--require", action="append", default=[], metavar="NAME",
                    help="fail, not skip, when this framework is unavailable (keras = this process's backend)")
    group.addoption("--framework", action="append", default=[], metavar="NAME",
                    help="check only this framework (repeatable)")
    group.addoption("--device", choices=("cpu", "cuda", "all"), default="all",
                    help="devices to check (default all: a device this machine lacks is recorded as no-device)")
    group.addoption("--shard", metavar="K/N", type=_shard,
                    help="run the K-th of N disjoint parts of the tests (CI fleets; merge the results)")
    group.addoption("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                    help="also check this adapter (repeatable; see XENT_CONFORMANCE_ADAPTERS)")
    group.addoption("--manifest", action="append", default=[], metavar="PATH",
                    help="also read this manifest of known divergences (repeatable; a plug-in's own entries)")
    group.addoption("--modes", action="append", default=[], metavar="MODE[,MODE]",
                    help="run only these modes (eager, jit, compile, function, xla, ...; default every mode): "
                         "--modes eager checks without compiling; a check left with no mode is skipped and counted")


def _shard(text):
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: K must be between 1 and N")
    return k, n


def in_shard(nodeid: str, shard) -> bool:
    """Whether a test belongs to shard (K, N): by a stable hash of its id, so shards are
    disjoint, cover everything, and need no coordination."""
    k, n = shard
    return zlib.crc32(nodeid.encode()) % n == k - 1


def pytest_ignore_collect(collection_path, config):
    """With --cases and no paths named, a run of checks: the suite's own tests, which pytest's
    testpaths would add, are left out."""
    if not config.getoption("cases") or config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return None
    unit = Path(str(config.rootpath)) / "tests" / "unit"
    return True if collection_path == unit or unit in collection_path.parents else None


@pytest.hookimpl(trylast=True)  # after -k and -m: a check they deselect is not recorded either
def pytest_collection_modifyitems(config, items):
    shard = config.getoption("shard")
    if shard:
        config.hook.pytest_deselected(items=[item for item in items if not in_shard(item.nodeid, shard)])
        items[:] = [item for item in items if in_shard(item.nodeid, shard)]
    # A check on a device this machine does not have is a skip known before it runs: it gets no
    # test of its own (half the matrix on a machine without a GPU), but its record is written
    # all the same, so the results and the skip counts stay complete.
    state = config.stash[_KEY]
    kept, state.absent = [], []
    for item in items:
        check = _absent_check(item)
        if check is None:
            kept.append(item)
        else:
            state.absent.append(check)
    items[:] = kept


def _absent_check(item):
    """The check of a matrix test on a device this machine does not have; else None."""
    check = getattr(getattr(item, "callspec", None), "params", {}).get("check")
    return check if check is not None and not machine.might_have(check.device) else None


def _record_absent(state, config):
    """Record this process's share of the checks on absent devices (each xdist worker collects
    them all; worker k of n records those whose id hashes to k)."""
    if config.option.collectonly:
        return  # nothing runs, so nothing is recorded (and no framework is imported for it)
    share = state.absent
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        k, n = int(workerinput["workerid"].removeprefix("gw")), int(workerinput["workercount"])
        share = [check for check in share if zlib.crc32(check.id.encode()) % n == k]
    state.records.extend(state.runner.run(check) for check in share)


def _framework_ids(names, option):
    known = adapters.registry().known_ids()
    ids = []
    for name in names:
        name = adapters.keras_framework_id() if name == "keras" else name
        if name not in known:
            raise pytest.UsageError(f"{option} {name}: unknown framework id (known: keras, {', '.join(known)})")
        ids.append(name)
    return ids


def pytest_configure(config):
    session = Session(config)
    config.stash[_KEY] = session
    adapters.configure(config.getoption("adapter"))
    session.required = set(_framework_ids(config.getoption("require"), "--require"))
    here = adapters.framework_ids_here()
    wanted = _framework_ids(config.getoption("framework"), "--framework")
    for name in wanted:
        if name not in here:
            raise pytest.UsageError(f"--framework {name}: this process checks {', '.join(here)}; "
                                    f"{adapters.how_to_check(name)} for {name}")
    for name in session.required:
        if name not in here:
            raise pytest.UsageError(f"--require {name}: {adapters.how_to_check(name)} to check it")
    session.frameworks = [f for f in here if f in wanted] if wanted else here
    _load_plugins(session.frameworks)
    _select_modes(config, session.frameworks)
    try:
        session.manifest = divergences.load_all(config.getoption("manifest"))
        tolerance.table()
    except (divergences.ManifestError, tolerance.ToleranceTableError) as exc:
        raise pytest.UsageError(str(exc)) from None
    session.runner = Runner(session.manifest, session.required)
    _cases(session)  # refuse a malformed case file now, as a usage error without a traceback
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(session), "xent-conformance-xdist")


def _select_modes(config, framework_ids):
    """Run only the modes --modes names, in this process and its workers. The controller refuses
    a mode that no framework checked here declares (a typo would otherwise skip everything),
    except under `xent-conformance run`, which judges that across all of its processes."""
    modes = mode_selection.mode_names(config.getoption("modes"))
    if not modes:
        return
    adapters.select_modes(modes)
    if hasattr(config, "workerinput") or os.environ.get(mode_selection.CHECKED_BY_RUN):
        return
    refused = mode_selection.refusal(modes, mode_selection.declared_modes(framework_ids), "checked here")
    if refused:
        raise pytest.UsageError(refused)


def _load_plugins(framework_ids):
    """Load third-party adapters now, so that a broken one is reported by this process (the
    xdist controller included), not only by the worker that meets it first."""
    registry = adapters.registry()
    for framework in framework_ids:
        source = registry.sources.get(framework)
        if source is not None and not source.builtin:
            try:
                registry.load(framework)
            except (adapters.Unavailable, adapters.AdapterError):
                pass  # recorded: Unavailable skips its checks, AdapterError is in registry.broken


def _cases(session):
    if session.cases is None:
        paths = session.config.getoption("cases") or [DEFAULT_CASES]
        try:
            session.cases = load_cases(paths)
        except CaseError as exc:
            raise pytest.UsageError(str(exc)) from None
    return session.cases


def pytest_generate_tests(metafunc):
    if "check" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[_KEY]
    device = metafunc.config.getoption("device")
    devices = checks.DEVICES if device == "all" else (device,)
    generated = list(checks.generate(_cases(session), session.frameworks, devices))
    metafunc.parametrize("check", generated, ids=[c.param_id for c in generated])


def frameworks_of_this_run(config):
    """The framework ids this pytest process checks (after --framework)."""
    return list(config.stash[_KEY].frameworks)


def runner_of_this_run(config):
    """The Runner (with the manifest and --require) of this pytest process."""
    return config.stash[_KEY].runner


@pytest.fixture(scope="session")
def conformance_runner(request):
    return request.config.stash[_KEY]


def run_check(session, check):
    """Run, record, and turn the outcome into pytest's."""
    record = session.runner.run(check)
    session.records.append(record)
    outcome, message = record["outcome"], record["message"]
    if outcome == "skipped":
        pytest.skip(f"[{record['reason']}] {message}")
    if outcome == "xfailed":
        pytest.xfail(message)
    if outcome in ("failed", "error", "xpassed"):
        pytest.fail(message, pytrace=False)


def _environment(session):
    """Versions and devices of the frameworks whose checks this process recorded (only those:
    `-k torch` should not import TensorFlow to describe it)."""
    info = {}
    recorded = {record["framework"] for record in session.records}
    for framework in (f for f in session.frameworks if f in recorded):
        try:
            info[framework] = {**adapters.load(framework).environment(),
                               "modes": sorted(mode_selection.declared_modes([framework]))}
        except (adapters.Unavailable, adapters.AdapterError) as exc:
            info[framework] = {"version": None, "unavailable": str(exc)}
    return info


def pytest_sessionfinish(session):
    state = session.config.stash[_KEY]
    _record_absent(state, session.config)
    if state.records and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK  # every check was recorded, each as a skip on an absent device
    if adapters.registry().broken and session.exitstatus == 0:
        session.exitstatus = 1  # an adapter that could not be used fails the run, whatever else passed
    if not state.records and not state.environments:
        return
    env = _environment(state) if state.records else {}
    matched = sorted(state.runner.matched_entries)
    if hasattr(session.config, "workerinput"):  # an xdist worker: hand over, never write
        session.config.workeroutput["xent_records"] = json.dumps(
            {"records": state.records, "env": env, "matched": matched})
        return
    path = session.config.getoption("results")
    if path:
        here = results.environment(env)
        here["manifest_matched"] = matched
        merged_env = results.merge_environments([here] + state.environments)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        results.write(path, merged_env, state.records)


FAST_EXIT_VARIABLE = "XENT_CONFORMANCE_FAST_EXIT"  # `run` sets it to 1 for the processes it starts


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after every other plugin is done
def pytest_cmdline_main(config):
    """With XENT_CONFORMANCE_FAST_EXIT=1, end the process with pytest's exit status as soon as
    pytest is done: every pytest_sessionfinish (the results file, the JUnit XML) and
    pytest_unconfigure has run. os._exit skips the frameworks' native destructors, one of
    which crashed a finished run at interpreter exit (double free, exit -6)."""
    status = yield  # an exception (a usage error, a failed write) goes on as pytest would have it
    # xdist workers end as they always have: their records reach the controller before then
    if os.environ.get(FAST_EXIT_VARIABLE) == "1" and _KEY in config.stash and not hasattr(config, "workerinput"):
        import logging
        import sys

        logging.shutdown()  # what atexit would have flushed: --log-file, then the streams
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):  # closed, or a broken pipe: nothing to keep
                pass
        os._exit(int(status or 0))
    return status


def _other_tests(terminalreporter):
    """Outcomes of the tests that are not checks (invariants, properties), so that the plugin's
    counts and pytest's add up."""
    counted = {}
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        reports = [r for r in terminalreporter.stats.get(outcome, [])
                   if getattr(r, "nodeid", "") and "::test_check[" not in r.nodeid
                   and getattr(r, "when", "call") in ("call", "setup")]
        if reports:
            counted[outcome] = len({r.nodeid for r in reports})
    return counted


def pytest_terminal_summary(terminalreporter, config):
    state = config.stash[_KEY]
    broken = adapters.registry().broken
    if not state.records and not broken:
        return
    write = terminalreporter.write_line
    terminalreporter.section("xent-conformance")
    for line in broken:
        write(f"ADAPTER ERROR {line}", red=True)
    for line in summary.counts(state.records):
        write(line)
    if any(r.get("compiles") for r in state.records):
        write(compile_cache.describe())
    untested = Counter(r["device"] for r in state.records if not machine.might_have(r["device"]))
    for device, n in sorted(untested.items()):
        write(f"{n} checks on {device}, which this machine does not have: recorded as skipped, not run as tests")
    others = _other_tests(terminalreporter)
    if others:
        write(f"{sum(others.values())} invariant and property tests beside the checks: "
              + ", ".join(f"{n} {o}" for o, n in sorted(others.items())))
    frameworks_here = {r["framework"] for r in state.records if r["framework_version"]}
    matched = {r.get("manifest") for r in state.records} | state.runner.matched_entries
    unmatched = [e.id for e in state.manifest if e.id not in matched and any(e.may_cover(f) for f in frameworks_here)]
    if unmatched and config.getoption("cases"):  # a chosen subset of cases: not a finding
        write(f"  {len(unmatched)} manifest entries cover checks this subset of cases does not have")
    else:
        for entry_id in unmatched:
            write(f"  manifest entry {entry_id!r} matched no check in this run")
    if not config.getoption("framework"):
        elsewhere = [f for f in adapters.registry().known_ids() if f not in adapters.framework_ids_here()]
        if elsewhere:
            write("checked in other processes, not here: " + "; ".join(
                f"{f} ({adapters.how_to_check(f)})" for f in elsewhere))
    path = config.getoption("results")
    if path:
        write(f"results: {path}")


class _XdistController:
    """Collects the workers' records on the controller (registered only when xdist is present)."""

    def __init__(self, state):
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        payload = getattr(node, "workeroutput", {}).get("xent_records")
        if payload:
            data = json.loads(payload)
            self.state.records.extend(data["records"])
            self.state.runner.matched_entries.update(data["matched"])
            self.state.environments.append({**results.environment(data["env"]), "manifest_matched": data["matched"]})
