"""Where a built-in adapter's benchmark kernels are: in a module of the bench package named
after its adapter module (conformance/adapters/X_adapter.py -> conformance/bench/builtin/
X_kernels.py), imported only when kernels are asked for, so that loading an adapter never
imports the bench package (which itself loads adapters)."""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable, Collection, Mapping

BUILTIN_ADAPTERS = "conformance.adapters."
BUILTIN_KERNELS = "conformance.bench.builtin."


def kernels_module_name(adapter_module: str) -> str | None:
    """conformance.adapters.X_adapter -> conformance.bench.builtin.X_kernels; None for a module
    that is not a built-in adapter module."""
    if adapter_module.startswith(BUILTIN_ADAPTERS) and adapter_module.endswith("_adapter"):
        return BUILTIN_KERNELS + adapter_module[len(BUILTIN_ADAPTERS):-len("_adapter")] + "_kernels"
    return None


def builtin_kernels_module(adapter_class: type) -> str | None:
    """The benchmark module of the first built-in adapter module in the class's ancestry, where
    it exists: a plug-in subclass of a built-in adapter times what the built-in adapter times."""
    for cls in adapter_class.__mro__:
        name = kernels_module_name(cls.__module__)
        if name is not None:
            return name if importlib.util.find_spec(name) is not None else None
    return None


def builtin_kernels(adapter: Any) -> Mapping[str, Any]:
    """The adapter's kernels from its benchmark module's kernels(adapter); {} where it has none."""
    module = builtin_kernels_module(type(adapter))
    return {} if module is None else importlib.import_module(module).kernels(adapter)


def moved_to_bench(adapter_module: str, names: Collection[str]) -> Callable[[str], Any]:
    """A built-in adapter module's __getattr__, serving the benchmark helpers that moved to its
    benchmark module to plug-ins that import them from the adapter module; read on first use,
    so that importing the adapter does not import the bench package."""
    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(str(kernels_module_name(adapter_module))), name)
        raise AttributeError(f"module {adapter_module!r} has no attribute {name!r}")
    return __getattr__
