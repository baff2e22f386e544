"""A built-in framework that is not installed is a counted not-installed skip, whether its
module fails to import or its adapter imports the framework when it is built (Keras 3)."""
import builtins

import pytest

from conformance.adapters import Unavailable
from conformance.adapters.discovery import AdapterError, Source, instantiate


@pytest.fixture
def without_keras(monkeypatch):
    real_import = builtins.__import__

    def refuse_keras(name, *args, **kwargs):
        if name == "keras" or name.startswith("keras."):
            raise ModuleNotFoundError("No module named 'keras'", name="keras")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", refuse_keras)
    monkeypatch.setenv("KERAS_BACKEND", "numpy")


def test_keras_missing_is_not_installed_not_an_adapter_error(without_keras):
    with pytest.raises(Unavailable, match="not installed"):
        instantiate(Source("conformance.adapters.keras_adapter:KerasOnNumpy", "entry point"))


def test_a_plugin_that_fails_to_build_on_an_import_is_broken(without_keras, tmp_path, monkeypatch):
    (tmp_path / "needs_keras.py").write_text(
        "from conformance.adapters.api import Adapter\n"
        "class NeedsKeras(Adapter):\n"
        "    def __init__(self):\n"
        "        import keras  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AdapterError, match="construction raised ModuleNotFoundError"):
        instantiate(Source("needs_keras:NeedsKeras", "--adapter"))
