"""The framework table is what each built-in adapter class declares, read from its source
without importing the framework: ids, distributions, processes and reserved words."""
import subprocess
import sys
import textwrap

import pytest

from conformance import frameworks


def write_adapters(tmp_path, text):
    (tmp_path / "newfw_adapter.py").write_text(textwrap.dedent(text))
    return frameworks.builtin_frameworks(tmp_path)


def test_a_new_adapter_module_is_a_framework_with_its_process(tmp_path):
    found = write_adapters(tmp_path, """
        import newfw  # never imported by the reader

        class Base(Adapter):
            packages = ("newfw-core",)

        class NewAdapter(Base):
            framework = "newfw"
            own_process = True

        class NewComposed(NewAdapter):  # inherits the id: a composition, not a framework
            composition = "log_softmax, then gather"

        class KerasOnNew(Base):
            framework: str = "keras-new"
            keras_backend = "new"
    """)
    assert [(f.id, f.adapter, f.packages, f.process) for f in found] == [
        ("newfw", "conformance.adapters.newfw_adapter:NewAdapter", ("newfw-core",), "newfw"),
        ("keras-new", "conformance.adapters.newfw_adapter:KerasOnNew", ("newfw-core",), "new"),
    ]


def test_a_declaration_that_is_not_a_literal_is_refused_naming_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"newfw_adapter.py:4: NewAdapter.packages must be a literal"):
        write_adapters(tmp_path, """
            class NewAdapter(Adapter):
                framework = "newfw"
                packages = tuple(["newfw"])
        """)


def test_the_table_agrees_with_the_adapters_as_loaded():
    """Each declaration read from the source is what the adapter class says when imported."""
    import importlib

    for framework in frameworks.BUILTIN.values():
        if framework.id not in ("numpy",):  # importing the others needs their frameworks installed
            continue
        module, _, name = framework.adapter.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert (cls.framework, tuple(cls.packages), cls.keras_backend, cls.own_process) == (
            framework.id, framework.packages, framework.keras_backend, framework.own_process)


def test_processes_and_reserved_words_come_from_the_declarations():
    assert frameworks.PROCESSES == ("tensorflow", "jax", "torch", "numpy", "paddle")
    assert frameworks.OWN_PROCESSES == ("paddle",) and frameworks.process_of("keras-jax") == "jax"
    assert set(frameworks.RESERVED_WORDS) >= {"numpy", "tensorflow", "torch", "jax", "keras", "paddle", "mlx"}
    assert frameworks.BUILTIN["mlx"].packages == ("mlx", "mlx-cpu")  # one source: the adapter's


def test_importing_the_suite_and_its_table_imports_no_framework():
    code = ("import sys, conformance\nfrom conformance import frameworks, adapters\nframeworks.BUILTIN\n"
            "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'keras', 'paddle', 'mlx', 'tinygrad', "
            "'onnxruntime', 'tf_keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
