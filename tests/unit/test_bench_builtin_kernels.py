"""The built-in benchmark kernels live in conformance/bench/builtin/, one module per adapter
module, found by Adapter.kernels() through the module's name: loading an adapter never imports
the bench package, and plug-ins still offer kernels of their own."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks
from conformance.adapters.api import Adapter, Capability
from conformance.adapters.kernel_modules import builtin_kernels_module, kernels_module_name
from conformance.adapters.numpy_adapter import NumpyAdapter
from conformance.bench.builtin import numpy_kernels
from conformance.bench.contract import BenchKernel, Problem

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "conformance" / "adapters"
BUILTIN = ROOT / "conformance" / "bench" / "builtin"


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(ADAPTERS.glob("*.py")), ids=lambda p: p.name)
def test_no_adapter_module_imports_the_bench_package(path):
    bench = sorted(name for name in imported_modules(path) if name.startswith("conformance.bench"))
    assert not bench, f"{path.name} imports {bench}"


def test_loading_an_adapter_leaves_the_bench_package_unimported():
    code = ("import sys\n"
            "import numpy as np\n"
            "import conformance.adapters.discovery\n"
            "from conformance import adapters\n"
            "adapters.load('numpy').loss('sparse_softmax_cross_entropy', np.array([[1.0, 2.0]]), np.array([1]), {},"
            " 'float64', 'cpu')\n"
            "print(sorted(m for m in sys.modules if m.startswith('conformance.bench')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_builtin_adapter_module_has_its_kernels_module_and_no_more():
    adapter_modules = {framework.adapter.split(":")[0] for framework in frameworks.BUILTIN.values()}
    expected = {kernels_module_name(module) for module in adapter_modules}
    present = {f"conformance.bench.builtin.{path.stem}" for path in BUILTIN.glob("*_kernels.py")}
    assert None not in expected
    assert present == expected


def test_the_rule_maps_a_builtin_adapter_module_and_nothing_else():
    assert kernels_module_name("conformance.adapters.torch_adapter") == "conformance.bench.builtin.torch_kernels"
    assert kernels_module_name("conformance.adapters.torch_common") is None
    assert kernels_module_name("xent_kernels.liger") is None


class NumpyPlugin(NumpyAdapter):
    """A plug-in built on a built-in adapter: it times what the built-in adapter times."""
    framework = "numpy-plugin"


class OwnKernels(Adapter):
    framework = "own-kernels"
    capabilities = {"sparse_softmax_cross_entropy": Capability("handle")}

    def kernels(self):
        return {"mine": BenchKernel("fused", "a plug-in's own kernel", lambda problem: None)}


class NoKernels(Adapter):
    framework = "no-kernels"
    capabilities = {"sparse_softmax_cross_entropy": Capability("handle")}


def test_a_builtin_adapter_offers_its_benchmark_modules_kernels():
    kernels = NumpyAdapter().kernels()
    assert sorted(kernels) == ["lse", "naive"]
    assert kernels["lse"].kind == "fused" and kernels["naive"].kind == "naive"
    assert builtin_kernels_module(NumpyAdapter) == numpy_kernels.__name__


def test_a_subclass_of_a_builtin_adapter_inherits_its_kernels():
    assert sorted(NumpyPlugin().kernels()) == ["lse", "naive"]


def test_a_plugin_keeps_its_own_kernels_and_one_without_offers_none():
    assert list(OwnKernels().kernels()) == ["mine"]
    assert NoKernels().kernels() == {}


def test_a_builtin_kernel_still_computes_the_loss():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], np.float32)
    labels = np.array([1, 2])
    timed = NumpyAdapter().kernels()["lse"].build(Problem("fwd", "cpu", "float32", logits, labels))
    loss, grad = timed.loss_grad(timed.call())
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    expected = np.log(np.exp(shifted).sum(axis=1)) - shifted[[0, 1], labels]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert grad is None


def test_the_moved_helpers_are_still_served_from_the_adapter_module():
    from conformance.adapters import numpy_adapter

    assert numpy_adapter.numpy_timed is numpy_kernels.numpy_timed
    with pytest.raises(AttributeError, match="numpy_adapter' has no attribute 'lse_loss'"):
        numpy_adapter.lse_loss  # noqa: B018 - only the names plug-ins imported are served
