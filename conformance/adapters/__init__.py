"""Framework adapters, one module each, loaded on demand by framework id."""
import importlib
import os

from conformance import FRAMEWORK_IDS
from conformance.adapters.base import Adapter, NotOffered, Result, Unavailable

_MODULES = {
    "numpy": "numpy_adapter",
    "tensorflow": "tensorflow_adapter",
    "torch": "torch_adapter",
    "jax": "jax_adapter",
    "tf_keras": "tf_keras_adapter",
}
_cache = {}


def keras_framework_id():
    """The Keras 3 framework id of this process: the backend is fixed before keras is imported."""
    return "keras-" + os.environ.get("KERAS_BACKEND", "tensorflow")


def framework_ids_here():
    """Frameworks this process checks: every non-Keras-3 one, and Keras 3 on this process's backend."""
    keras_id = keras_framework_id()
    return [f for f in FRAMEWORK_IDS if not f.startswith("keras-") or f == keras_id]


def load(framework):
    """The adapter for a framework id, or Unavailable (cached, including the failure)."""
    if framework not in _cache:
        try:
            if framework.startswith("keras-"):
                module = importlib.import_module("conformance.adapters.keras_adapter")
                _cache[framework] = module.KerasAdapter(framework.removeprefix("keras-"))
            else:
                module = importlib.import_module("conformance.adapters." + _MODULES[framework])
                _cache[framework] = module.ADAPTER()
        except ImportError as exc:
            _cache[framework] = Unavailable(f"{framework} is not installed ({exc})")
        except Unavailable as exc:
            _cache[framework] = exc
    adapter = _cache[framework]
    if isinstance(adapter, Unavailable):
        raise adapter
    return adapter


__all__ = ["Adapter", "NotOffered", "Result", "Unavailable", "load", "framework_ids_here", "keras_framework_id"]
