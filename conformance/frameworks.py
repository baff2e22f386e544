"""What the suite knows of each built-in framework id, derived from what its adapter declares.

A framework id names one implementation under test. The suite must know a built-in
framework's id, distributions and process before anything imports the framework (the
orchestrator starts one process per Keras backend and per framework that needs its own, and
importing conformance imports no framework). So those facts are the class attributes the
adapter itself sets, written as literals in the class body (or a base class in the same
module), and read here with `ast`, without running the module:

    class PaddleAdapter(Adapter):
        framework = "paddle"
        packages = ("paddlepaddle",)  # versions recorded, named by manifest ranges
        own_process = True  # libpaddle.so cannot share a process with TensorFlow's libraries

A built-in adapter is a class in a `conformance/adapters/*_adapter.py` module that sets
`framework` to a string literal (subclasses that inherit it, compositions, are not). Keras 3
fixes its backend at import, so each `keras_backend` has a process with KERAS_BACKEND set
first. Plug-ins run in the main process; of a plug-in only its `layouts` is read here
(layouts_of), from the source of the class its entry point names. The table is built on first
use (BUILTIN, BUILTIN_IDS, KERAS_BACKENDS, OWN_PROCESSES, PROCESSES, RESERVED_WORDS).
"""
from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from importlib import metadata
from typing import Any

MAIN_PROCESS = "tensorflow"  # the Keras backend of the process that checks every non-Keras-3 framework
# Processes whose checks outweigh starting more pytest-xdist workers (each re-imports the
# frameworks and re-collects the cases, some 5 s here): those where XLA compiles for every new
# shape. The others run in one worker (keras-torch: 19 s in one, 26 s in two, on 2 cores).
PARALLEL_PROCESSES: tuple[str, ...] = (MAIN_PROCESS, "jax")
PROCESS_VARIABLE = "XENT_CONFORMANCE_PROCESS"  # names a process of its own; else KERAS_BACKEND names it
ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"
DECLARED = ("framework", "packages", "keras_backend", "own_process", "layouts")
PLUGIN_GROUP = "xent_conformance.adapters"  # the adapters' entry-point group (discovery reads it from here)


@dataclass(frozen=True)
class Framework:
    id: str
    adapter: str  # "module:attr" of the adapter class
    packages: tuple[str, ...] = ()  # distributions: versions recorded, named by manifest ranges
    keras_backend: str = ""  # Keras 3 only: KERAS_BACKEND of the process that runs it
    own_process: bool = False  # checked in a process of its own, named by the id
    layouts: tuple[str, ...] = ()  # the layout axes (vocab, batch, sequence) its adapter takes

    @property
    def process(self) -> str:
        """The name of the process that checks this framework: a Keras backend, or its own id."""
        if self.own_process:
            return self.id
        return self.keras_backend or MAIN_PROCESS


def _literal_attributes(node: ast.ClassDef, path: Path) -> dict[str, Any]:
    """The class body's assignments of DECLARED names to literals."""
    found: dict[str, Any] = {}
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        for target in (t for t in targets if isinstance(t, ast.Name) and t.id in DECLARED):
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(f"{path}:{statement.lineno}: {node.name}.{target.id} must be a literal "
                                 f"(read before the framework is imported)") from None
    return found


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in ast.parse(path.read_text(), str(path)).body if isinstance(node, ast.ClassDef)}


def _attributes(classes: dict[str, ast.ClassDef], name: str, path: Path, seen: frozenset = frozenset()) -> dict:
    """A class's DECLARED literals, with those it inherits from base classes of the same module."""
    node = classes.get(name)
    if node is None or name in seen:
        return {}
    inherited: dict = {}
    for base in reversed(node.bases):  # the first base wins, as in Python's lookup
        if isinstance(base, ast.Name):
            inherited.update(_attributes(classes, base.id, path, seen | {name}))
    return {**inherited, **_literal_attributes(node, path)}


def _declared_in(path: Path) -> list[Framework]:
    """The built-in adapter classes of one module, in the order they are written."""
    classes = _classes(path)
    found = []
    for name, node in classes.items():
        if isinstance(_literal_attributes(node, path).get("framework"), str):
            values = _attributes(classes, name, path)
            found.append(Framework(values["framework"], f"conformance.adapters.{path.stem}:{name}",
                                   tuple(values.get("packages", ())), str(values.get("keras_backend") or ""),
                                   bool(values.get("own_process")), tuple(values.get("layouts", ()))))
    return found


def builtin_frameworks(directory: Path = ADAPTERS_DIR) -> list[Framework]:
    """Every built-in adapter's declaration, module by module in name order."""
    return [f for path in sorted(directory.glob("*_adapter.py")) for f in _declared_in(path)]


@functools.cache
def _table() -> dict:
    builtin = {f.id: f for f in builtin_frameworks()}
    backends = tuple(dict.fromkeys(f.keras_backend for f in builtin.values() if f.keras_backend))
    keras_backends = tuple(sorted(backends, key=lambda b: b != MAIN_PROCESS))  # the main one first
    own = tuple(f.id for f in builtin.values() if f.own_process)
    return {
        "BUILTIN": builtin,
        "BUILTIN_IDS": tuple(builtin),
        "KERAS_BACKENDS": keras_backends,
        "OWN_PROCESSES": own,
        "PROCESSES": keras_backends + own,
        # Words a case name may not contain, so that `pytest -k NAME` selects by framework only.
        "RESERVED_WORDS": tuple(dict.fromkeys(i.split("-")[0] for i in builtin)),
    }


def __getattr__(name: str):
    table = _table()
    if name in table:
        return table[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def order_key(framework_id: str | None) -> tuple[int, int, str]:
    """Built-in ids in table order, then any other id alphabetically: none is ever dropped."""
    ids = _table()["BUILTIN_IDS"]
    if framework_id in ids:
        return (0, ids.index(framework_id), "")
    return (1, 0, str(framework_id))


@functools.cache
def layouts_of(framework_id: str) -> tuple[str, ...]:
    """The layout axes a framework's adapter takes, read before it is imported: a built-in's
    from the table; a plug-in's from the `layouts` literal of the class its entry point names
    (the module's source is located, not run: only its package's __init__ is imported). An
    adapter named by --adapter alone, or a class that does not write the literal, takes none."""
    known = _table()["BUILTIN"].get(framework_id)
    if known:
        return known.layouts
    points = [p for p in metadata.entry_points(group=PLUGIN_GROUP) if p.name == framework_id]
    if not points:
        return ()
    module, _, attr = points[0].value.partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return ()  # its loading reports the broken plug-in
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ()
    path = Path(spec.origin)
    return tuple(_attributes(_classes(path), attr, path).get("layouts", ()))


def process_of(framework_id: str) -> str:
    """The name of the process that checks framework_id (plug-ins: the main one)."""
    known = _table()["BUILTIN"].get(framework_id)
    return known.process if known else MAIN_PROCESS


def ids_in_process(process: str, ids) -> list[str]:
    """The framework ids among ids that the named process checks."""
    return [f for f in ids if process_of(f) == process]


def process_environment(process: str) -> dict[str, str]:
    """The variables that make a process the named one: its Keras backend (a process of its
    own keeps the main backend and never imports Keras 3), and the process name."""
    if process in _table()["OWN_PROCESSES"]:
        return {"KERAS_BACKEND": MAIN_PROCESS, PROCESS_VARIABLE: process}
    return {"KERAS_BACKEND": process, PROCESS_VARIABLE: ""}


def process_label(process: str) -> str:
    """How results files and progress lines name a process."""
    return process if process in _table()["OWN_PROCESSES"] else "keras-" + process
