"""Finding adapters, one way for all: built-in and third-party adapters through the entry-point
group `xent_conformance.adapters`, one-off kernels through `--adapter module:attr` and the
variable XENT_CONFORMANCE_ADAPTERS.

An entry point's name is the framework id it provides and is loaded on first use (importing
an adapter imports its framework). An explicit `module:attr` is loaded at once, since only
the adapter knows its id. A framework that is not installed is `Unavailable` (its checks skip
and are counted); an adapter that cannot be used (fails to import, declares what the suite
does not know, takes a built-in id) is an `AdapterError`: a one-line message naming the
adapter and where it came from, which the run reports and fails on, while everything else in
the run goes on.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata

from conformance import frameworks
from conformance.adapters import call_log, perturbed
from conformance.adapters.api import Adapter, Unavailable
from conformance.adapters.validation import AdapterError, validate

ENTRY_POINT_GROUP = frameworks.PLUGIN_GROUP
ENV_VARIABLE = "XENT_CONFORMANCE_ADAPTERS"


@dataclass(frozen=True)
class Source:
    target: str  # "module:attr"
    origin: str  # where it was named, for messages

    @property
    def builtin(self) -> bool:
        return self.target.startswith("conformance.adapters.")


def entry_point_sources() -> dict[str, Source]:
    """framework id -> Source, from the installed entry points, then the built-in table for
    built-in ids that no installed distribution registers (a checkout on PYTHONPATH)."""
    found: dict[str, Source] = {}
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, Source(point.value, f"entry point {point.name!r} ({ENTRY_POINT_GROUP})"))
    for framework in frameworks.BUILTIN.values():
        found.setdefault(framework.id, Source(framework.adapter, "the built-in table"))
    return found


def explicit_targets(cli_targets=(), environ=None) -> list[Source]:
    """--adapter values, then XENT_CONFORMANCE_ADAPTERS (comma-separated module:attr)."""
    environ = os.environ if environ is None else environ
    sources = [Source(t, "--adapter") for t in cli_targets]
    for target in environ.get(ENV_VARIABLE, "").split(","):
        if target.strip():
            sources.append(Source(target.strip(), ENV_VARIABLE))
    return sources


def instantiate(source: Source) -> Adapter:
    """Import module:attr and build the adapter (a class, a factory or an instance)."""
    module_name, _, attr = source.target.partition(":")
    if not module_name or not attr:
        raise AdapterError(f"adapter {source.target!r} from {source.origin}: expected module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if source.builtin:
            raise Unavailable(f"not installed ({exc})") from None
        raise AdapterError(f"adapter {source.target!r} from {source.origin}: cannot import ({exc})") from None
    except Unavailable:
        raise
    except Exception as exc:  # a plug-in module that raises on import is broken, not missing
        raise AdapterError(f"adapter {source.target!r} from {source.origin}: import raised "
                           f"{type(exc).__name__}: {exc}") from None
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise AdapterError(f"adapter {source.target!r} from {source.origin}: {module_name} has no {attr!r}") from None
    try:
        adapter = target() if callable(target) and not isinstance(target, Adapter) else target
    except Unavailable:
        raise
    except ImportError as exc:  # a built-in adapter that imports its framework when built (Keras)
        if source.builtin:
            raise Unavailable(f"not installed ({exc})") from None
        raise AdapterError(f"adapter {source.target!r} from {source.origin}: construction raised "
                           f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        raise AdapterError(f"adapter {source.target!r} from {source.origin}: construction raised "
                           f"{type(exc).__name__}: {exc}") from None
    validate(adapter, f"adapter {source.target!r} from {source.origin}")
    return perturbed.wrap(adapter)


class Registry:
    """The adapters of one process: known ids, loaded on demand, failures kept."""

    def __init__(self, cli_targets: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> None:
        self.sources = entry_point_sources()
        self.loaded: dict[str, Adapter | Exception] = {}
        self.broken: list[str] = []  # one line per adapter that cannot be used
        self.cli_targets = tuple(cli_targets)
        for source in explicit_targets(cli_targets, environ):
            self._load_explicit(source)

    def _load_explicit(self, source: Source) -> None:
        try:
            adapter = instantiate(source)
        except (AdapterError, Unavailable) as exc:
            self.broken.append(str(exc) if isinstance(exc, AdapterError)
                               else f"adapter {source.target!r} from {source.origin}: {exc}")
            return
        framework = adapter.framework
        if framework in frameworks.BUILTIN:
            self.broken.append(f"adapter {source.target!r} from {source.origin}: framework id {framework!r} "
                               f"is a built-in id; a plug-in's id must be its own")
            return
        if framework in self.loaded:
            self.broken.append(f"adapter {source.target!r} from {source.origin}: framework id {framework!r} "
                               f"is already provided by {self.sources[framework].target}")
            return
        self.sources[framework] = source
        self.loaded[framework] = call_log.recording(adapter, self.cli_targets)

    def known_ids(self) -> list[str]:
        return sorted(self.sources, key=frameworks.order_key)

    def ids_for_process(self, process: str) -> list[str]:
        """Frameworks the named process (a Keras backend, or a framework's own) checks."""
        return frameworks.ids_in_process(process, self.known_ids())

    def load(self, framework: str) -> Adapter:
        """The adapter for a framework id; raises Unavailable or AdapterError (cached)."""
        if framework not in self.loaded:
            source = self.sources.get(framework)
            try:
                if source is None:
                    raise AdapterError(f"unknown framework id {framework!r} (known: {', '.join(self.known_ids())})")
                adapter = instantiate(source)
                if adapter.framework != framework:
                    raise AdapterError(f"adapter {source.target!r} from {source.origin}: provides framework id "
                                       f"{adapter.framework!r}, not {framework!r}")
                self.loaded[framework] = call_log.recording(adapter, self.cli_targets)
            except Unavailable as exc:
                self.loaded[framework] = Unavailable(f"{framework} is {exc}" if str(exc).startswith("not installed")
                                                     else f"{framework}: {exc}")
            except AdapterError as exc:
                self.broken.append(str(exc))
                self.loaded[framework] = exc
        loaded = self.loaded[framework]
        if isinstance(loaded, Exception):
            raise loaded
        return loaded


def keras_backend_here() -> str:
    """The Keras 3 backend of this process: fixed by KERAS_BACKEND before keras is imported."""
    return os.environ.get("KERAS_BACKEND", frameworks.MAIN_PROCESS)


def process_here() -> str:
    """This process's name: a framework's own process where XENT_CONFORMANCE_PROCESS names
    one, else its Keras backend."""
    named = os.environ.get(frameworks.PROCESS_VARIABLE, "")
    return named if named in frameworks.OWN_PROCESSES else keras_backend_here()
