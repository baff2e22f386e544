"""Adapters: the public API (api.py), their discovery (discovery.py), one module per framework.

A process holds one Registry, configured by the pytest plugin or the commands with the
`--adapter` targets it was given; `load(framework_id)` returns its adapter.
"""
from conformance.adapters.api import Adapter, Capability, NotOffered, Result, Unavailable
from conformance.adapters.discovery import Registry, keras_backend_here
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
    """Frameworks this process checks: every non-Keras-3 one (plug-ins too), and Keras 3 on
    this process's backend."""
    here = keras_backend_here()
    ids = registry().known_ids()
    return [f for f in ids if not f.startswith("keras-") or f == "keras-" + here]


__all__ = ["Adapter", "AdapterError", "Capability", "NotOffered", "Result", "Unavailable", "configure", "load",
           "registry", "framework_ids_here", "keras_framework_id"]
