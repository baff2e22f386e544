"""How to run one check again: its case file, its pytest id and a one-line command."""
import shlex
from pathlib import Path

from conformance import frameworks

REPO = Path(__file__).resolve().parents[2]


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
    pinned = "-pinned" if record.get("kind") == "pinned" or str(record.get("id", "")).endswith("::pinned") else ""
    return (f"{record.get('case')}-{record.get('framework')}-{record.get('dtype')}-{record.get('device')}-"
            f"{record.get('quantity')}{pinned}")


def reproduce_command(record: dict) -> str:
    """One line that runs exactly this check: its case file, its test id, its framework required."""
    framework = record.get("framework", "")
    node = f"conformance/pytest/suite/test_matrix.py::test_check[{pytest_id(record)}]"
    words = []
    keras_backend = frameworks.BUILTIN[framework].keras_backend if framework in frameworks.BUILTIN else None
    if keras_backend:  # a plug-in runs in the main process, whatever its id
        words.append(f"KERAS_BACKEND={keras_backend}")
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

