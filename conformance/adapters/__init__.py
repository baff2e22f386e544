"""Adapters: the public API (api.py), their discovery (discovery.py), one module per framework.

A process holds one Registry, configured by the pytest plugin or the commands with the
`--adapter` targets it was given; `load(framework_id)` returns its adapter.
"""
from conformance.adapters.api import (Adapter, Capability, ModeNotSelected, NotOffered, RaisedInMode, RankFailed,
                                      Result, Unavailable, select_modes, selected_modes)
from conformance import frameworks
from conformance.adapters.discovery import Registry, keras_backend_here, process_here
from conformance.adapters.validation import AdapterError

_registry: Registry | None = None


def configure(cli_targets=(), environ=None) -> Registry:
    """Start this process's registry over again with these explicit adapters."""
    global _registry
    _registry = Registry(cli_targets, environ)
    return _registry


def registry() -> Registry:
    return _registry if _registry is not None else configure()


def load(framework: str) -> Adapter:
    """The adapter for a framework id; raises Unavailable or AdapterError."""
    return registry().load(framework)


def keras_framework_id() -> str:
    return "keras-" + keras_backend_here()


def framework_ids_here() -> list[str]:
    """Frameworks this process checks: in a framework's own process that framework only;
    elsewhere every framework without a process of its own (plug-ins too), and Keras 3 on this
    process's backend."""
    here = process_here()
    ids = registry().known_ids()
    if here in frameworks.OWN_PROCESSES:
        return frameworks.ids_in_process(here, ids)
    return [f for f in ids if (not f.startswith("keras-") or f == "keras-" + here)
            and frameworks.process_of(f) not in frameworks.OWN_PROCESSES]


def how_to_check(framework: str) -> str:
    """What to set so that a process checks framework."""
    process = frameworks.process_of(framework)
    if process in frameworks.OWN_PROCESSES:
        return f"set {frameworks.PROCESS_VARIABLE}={process} (its own process), or use `xent-conformance run`"
    return f"set KERAS_BACKEND={process}"


__all__ = ["Adapter", "AdapterError", "Capability", "ModeNotSelected", "NotOffered", "RaisedInMode", "RankFailed",
           "Result", "Unavailable", "configure", "load", "select_modes", "selected_modes",
           "registry", "framework_ids_here", "how_to_check", "keras_framework_id", "process_here"]
