"""How to run one check again: its case file, its pytest id and a one-line command."""
import shlex
from pathlib import Path

from conformance import frameworks
from conformance.report.model import layout_name

REPO = Path(__file__).resolve().parents[2]
PROCESS = "process"  # the kind of the records standing for a process of `run` that did not end well


def case_file(record: dict) -> str:
    """The case file, relative to the repository when it lies inside it."""
    path = record.get("file") or ""
    if not path:
        return ""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except (ValueError, OSError):
        return path


def pytest_id(record: dict) -> str:
    """The pytest parameter id of a record's check (conformance.core.checks.Check.param_id)."""
    check_id = str(record.get("id", ""))
    pinned = "-pinned" if record.get("kind") == "pinned" or check_id.endswith("::pinned") or "::pinned::" in check_id \
        else ""
    layout = layout_name(record.get("layout"))
    return (f"{record.get('case')}-{record.get('framework')}-{record.get('dtype')}-{record.get('device')}-"
            f"{record.get('quantity')}{pinned}" + (f"-{layout}" if layout else ""))


def reproduce_command(record: dict) -> str:
    """One line that runs exactly this check: its case file, its test id, its framework required.
    A process record (a pytest process that died) stands for checks of no one case: its command
    is the process's own (`rerun`, where the record has it), else `run` for that framework,
    into a folder of its own so the results this report reads stay."""
    framework = record.get("framework") or ""
    if record.get("kind") == PROCESS:
        return record.get("rerun") or f"xent-conformance run --framework {shlex.quote(framework)} " \
                                      "--results-dir results/rerun"
    node = f"conformance/pytest/suite/test_matrix.py::test_check[{pytest_id(record)}]"
    words = []
    known = frameworks.BUILTIN.get(framework)  # a plug-in runs in the main process, whatever its id
    keras_backend = known.keras_backend if known else None
    if keras_backend:
        words.append(f"KERAS_BACKEND={keras_backend}")
    elif known and known.own_process:  # paddle: elsewhere --require paddle is a usage error
        words.append(f"{frameworks.PROCESS_VARIABLE}={known.process}")
    words += ["python", "-m", "pytest", shlex.quote(node)]
    cases = case_file(record)
    if cases:
        words += ["--cases", shlex.quote(cases)]
    if keras_backend:
        words += ["--framework", framework]
    if framework:
        words += ["--require", framework]
    words += ["-p", "no:cacheprovider"]
    return " ".join(words)

