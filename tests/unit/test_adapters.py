"""The adapter API: declarations refused when the adapter loads, discovery by entry point,
--adapter and XENT_CONFORMANCE_ADAPTERS, and dispatch only through declared capabilities."""
import textwrap

import numpy as np
import pytest

from conformance import adapters, frameworks
from conformance.adapters import discovery
from conformance.adapters.api import Adapter, Capability, NotOffered, Result, options_key
from conformance.adapters.validation import AdapterError, validate
from conformance.cases import Case
from conformance.core.checks import Check
from conformance.core.runner import Runner


def _sparse(z, labels, options):
    shifted = z - z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=-1))
    return lse - np.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]


class Plain(Adapter):
    framework = "plain-kernel"
    capabilities = {"sparse_softmax_cross_entropy": Capability(_sparse, dtypes=("float64",), differentiable=False)}

    def version(self):
        return "1.0"

    def loss(self, op, prediction, labels, options, dtype, device):
        out = self.capability(op).implementation(prediction, labels, options)
        return Result(np.asarray(out, np.float64), str(out.dtype), "cpu")


def declaring(**capability):
    class Declared(Plain):
        capabilities = {"sparse_softmax_cross_entropy": Capability(**{"implementation": _sparse, **capability})}
    return Declared()


@pytest.mark.parametrize("capability, message", [
    ({"variant": "keras_clip"}, "unknown variant 'keras_clip'"),
    ({"options": {"z_loss_scale"}}, "unknown option(s) z_loss_scale"),
    ({"options": {"pos_weight"}}, "unknown option(s) pos_weight"),
    ({"dtypes": ("float32", "float8")}, "unknown dtype(s) float8"),
    ({"dtypes": {"tpu": ("float32",)}}, "unknown device 'tpu'"),
    ({"reductions": ("none", "avg")}, "unknown reduction(s) avg"),
    ({"implementation": None}, "declared without an implementation"),
    ({"modes": ()}, "modes must name at least one way"),
])
def test_a_declaration_the_suite_cannot_honour_is_refused_naming_the_op_and_key(capability, message):
    with pytest.raises(AdapterError) as error:
        validate(declaring(**capability), "adapter 'pkg:Kernel' from --adapter")
    text = str(error.value)
    assert text.startswith("adapter 'pkg:Kernel' from --adapter: plain-kernel sparse_softmax_cross_entropy: ")
    assert message in text and "\n" not in text


def test_an_unknown_op_or_a_bad_id_is_refused():
    class UnknownOp(Plain):
        capabilities = {"sparse_softmax_crossentropy": Capability(_sparse)}

    class BadId(Plain):
        framework = "My Kernel"

    with pytest.raises(AdapterError, match="sparse_softmax_crossentropy: unknown op"):
        validate(UnknownOp(), "x")
    with pytest.raises(AdapterError, match="framework id 'My Kernel'"):
        validate(BadId(), "x")
    with pytest.raises(AdapterError, match="is not a conformance.adapters.api.Adapter"):
        validate(object(), "x")


def test_dispatch_goes_through_the_declaration_only():
    adapter = Plain()
    with pytest.raises(NotOffered, match="no public function for sigmoid_cross_entropy"):
        adapter.check_offered("sigmoid_cross_entropy", "float64", "cpu", "loss")
    with pytest.raises(NotOffered, match="in float32"):
        adapter.check_offered("sparse_softmax_cross_entropy", "float32", "cpu", "loss")
    with pytest.raises(NotOffered, match="does not differentiate"):
        adapter.check_offered("sparse_softmax_cross_entropy", "float64", "cpu", "grad_logits")
    with pytest.raises(NotOffered, match="no ignore_index option"):
        adapter.check_offered("sparse_softmax_cross_entropy", "float64", "cpu", "loss", {"ignore_index": -100})
    with pytest.raises(NotOffered, match="no weighted_mean reduction"):
        adapter.check_offered("sparse_softmax_cross_entropy", "float64", "cpu", "loss", {"reduction": "weighted_mean"})
    capability = adapter.check_offered("sparse_softmax_cross_entropy", "float64", "cpu", "loss", {"axis": -1})
    assert capability.variant == "exact"


def test_dtypes_may_differ_by_device():
    adapter = declaring(dtypes={"cpu": ("float64",), "cuda": ("float32", "bfloat16")})
    adapter.check_offered("sparse_softmax_cross_entropy", "bfloat16", "cuda", "loss")
    with pytest.raises(NotOffered):
        adapter.check_offered("sparse_softmax_cross_entropy", "bfloat16", "cpu", "loss")


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A module `xent_test_plugin` on sys.path holding adapters good and bad."""
    (tmp_path / "xent_test_plugin.py").write_text(textwrap.dedent('''
        from conformance.adapters.api import Adapter, Capability

        class Plain(Adapter):
            capabilities = {"sparse_softmax_cross_entropy": Capability(len)}

            def version(self):
                return "1.0"

        class Good(Plain):
            framework = "plain-kernel"

        class TakesABuiltinId(Plain):
            framework = "torch"

        class Raises(Plain):
            def __init__(self):
                raise RuntimeError("no licence server")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "xent_test_plugin"


def test_adapters_named_by_the_variable_or_option_are_found(plugin_module):
    registry = discovery.Registry(environ={discovery.ENV_VARIABLE: f"{plugin_module}:Good"})
    assert "plain-kernel" in registry.known_ids() and not registry.broken
    assert registry.known_ids()[:len(frameworks.BUILTIN_IDS)] == list(frameworks.BUILTIN_IDS)
    assert registry.ids_for_process(frameworks.MAIN_PROCESS)[-1] == "plain-kernel"
    assert registry.load("plain-kernel").framework == "plain-kernel"
    assert "plain-kernel" in discovery.Registry([f"{plugin_module}:Good"], environ={}).known_ids()


@pytest.mark.parametrize("target, message", [
    ("xent_test_plugin:TakesABuiltinId", "framework id 'torch' is a built-in id"),
    ("xent_test_plugin:Raises", "construction raised RuntimeError: no licence server"),
    ("xent_test_plugin:Missing", "xent_test_plugin has no 'Missing'"),
    ("no_such_module_xyz:Adapter", "cannot import"),
    ("no-colon", "expected module:attr"),
])
def test_a_broken_plugin_is_one_line_naming_it_and_the_rest_goes_on(plugin_module, target, message):
    registry = discovery.Registry([target], environ={})
    assert len(registry.broken) == 1
    line = registry.broken[0]
    assert line.startswith(f"adapter {target!r} from --adapter: ") and message in line and "\n" not in line
    assert registry.known_ids()[:len(frameworks.BUILTIN_IDS)] == list(frameworks.BUILTIN_IDS)
    assert isinstance(registry.load("numpy"), Adapter)


def test_every_builtin_id_has_an_entry_point_matching_the_table():
    sources = discovery.entry_point_sources()
    for framework in frameworks.BUILTIN.values():
        assert sources[framework.id].target == framework.adapter


def test_the_pyproject_entry_points_hold_the_table():
    """Every id of the table is registered the same way; a framework added later needs only
    its adapter module and its entry-point line (it runs in the main process)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"][discovery.ENTRY_POINT_GROUP]
    for framework in frameworks.BUILTIN.values():
        assert declared[framework.id] == framework.adapter
    for framework_id, target in declared.items():
        assert target.startswith("conformance.adapters."), f"{framework_id}: built-in adapters live in the package"


def test_a_framework_with_its_own_process_is_checked_there_and_only_there(monkeypatch):
    """Paddle crashes when loaded after TensorFlow: the main process never loads it, and its
    own process loads nothing else."""
    adapters_package = adapters
    adapters_package.configure(environ={})
    monkeypatch.delenv(frameworks.PROCESS_VARIABLE, raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    main = adapters_package.framework_ids_here()
    assert "paddle" not in main and {"torch", "tinygrad", "keras-tensorflow"} <= set(main)
    monkeypatch.setenv(frameworks.PROCESS_VARIABLE, "paddle")
    assert adapters_package.framework_ids_here() == ["paddle"]
    assert frameworks.process_environment("paddle") == {"KERAS_BACKEND": "tensorflow",
                                                        frameworks.PROCESS_VARIABLE: "paddle"}
    assert frameworks.process_environment("jax")["KERAS_BACKEND"] == "jax"
    assert "XENT_CONFORMANCE_PROCESS=paddle" in adapters_package.how_to_check("paddle")
    assert frameworks.process_label("paddle") == "paddle" and frameworks.process_label("jax") == "keras-jax"


def test_an_unknown_id_is_an_adapter_error_not_a_skip():
    with pytest.raises(AdapterError, match="unknown framework id 'kerass'"):
        discovery.Registry(environ={}).load("kerass")


class DeclaresTwoModes(Plain):
    capabilities = {"sparse_softmax_cross_entropy": Capability(_sparse, dtypes=("float64",), modes=("jit", "eager"),
                                                                differentiable=False)}


@pytest.mark.parametrize("adapter, outcome", [(Plain(), "passed"), (DeclaresTwoModes(), "error")])
def test_a_declared_mode_that_did_not_run_is_an_error(monkeypatch, adapter, outcome):
    case = Case(name="small", op="sparse_softmax_cross_entropy", path="<test>",
                inputs={"logits": np.array([[1.0, 2.0, 0.5]]), "labels": np.array([1])})
    monkeypatch.setattr(adapters, "load", lambda name: adapter)
    record = Runner(manifest=[]).run(Check(case, "plain-kernel", "float64", "cpu", "loss"))
    assert record["outcome"] == outcome, record["message"]
    if outcome == "error":
        assert "declares modes jit, eager but returned none for jit" in record["message"]


def test_run_with_a_broken_adapter_checks_the_rest_and_exits_1(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--adapter", "no_such_module_xyz:Adapter", "--framework", "numpy",
         "--workers", "1", "--history", "", "--results-dir", str(tmp_path), "--", "--cases",
         str(root / "cases/sparse.yaml")],
        capture_output=True, text=True, cwd=root, timeout=600)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ADAPTER ERROR adapter 'no_such_module_xyz:Adapter' from --adapter: cannot import" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    records = json.loads((tmp_path / "conformance.json").read_text())["results"]
    assert records and {r["outcome"] for r in records} <= {"passed", "skipped"}


def test_run_with_a_framework_after_the_separator_runs_only_its_process(tmp_path):
    from conformance import orchestrate

    known = frameworks.BUILTIN_IDS
    assert orchestrate.plan(["keras-jax"], known) == [("jax", ["keras-jax"])]
    assert orchestrate.plan(["torch", "keras-torch"], known) == [("tensorflow", ["torch"]), ("torch", ["keras-torch"])]
    assert [step[0] for step in orchestrate.plan([], known)] == list(frameworks.PROCESSES)
    assert orchestrate.plan(["paddle", "torch"], known) == [("tensorflow", ["torch"]), ("paddle", ["paddle"])]
    taken = orchestrate.take_framework_args(["-x", "--framework", "jax", "--framework=torch"])
    assert taken == (["jax", "torch"], ["-x"])
    with pytest.raises(ValueError, match="unknown framework id"):
        orchestrate.plan(["kerass"], known)


def test_vector_jacobian_products_are_checked_where_losses_are_unreduced():
    from conformance.core import checks

    logits = np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 2.0]])
    unreduced = Case(name="u", op="sparse_softmax_cross_entropy", path="<t>",
                     inputs={"logits": logits, "labels": np.array([1, 2])})
    mean = Case(name="m", op="sparse_softmax_cross_entropy", path="<t>", options={"reduction": "mean"},
                inputs={"logits": logits, "labels": np.array([1, 2])})
    quantities = {c.quantity for c in checks.generate([unreduced], ["plain-kernel"], ("cpu",))}
    assert quantities == {"loss", "loss_dtype", "grad_logits", "vjp_logits", "jvp", "inputs_intact", "second_backward"}
    reduced = {c.quantity for c in checks.generate([mean], ["plain-kernel"], ("cpu",))}
    assert reduced == {"loss", "loss_dtype", "grad_logits", "jvp", "inputs_intact", "second_backward"}
    first, again = checks.cotangent(unreduced, "float32", (2,)), checks.cotangent(unreduced, "float32", (2,))
    assert np.array_equal(first, again) and np.array_equal(first, first.astype(np.float32))
    assert first[0] != first[1]  # a cotangent that weighs the rows differently


def test_an_adapter_whose_grad_takes_no_cotangent_is_not_offered_vjp(monkeypatch):
    class OldStyle(Plain):
        capabilities = {"sparse_softmax_cross_entropy": Capability(_sparse, dtypes=("float64",))}

        def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
            raise AssertionError("not called")

    case = Case(name="small", op="sparse_softmax_cross_entropy", path="<test>",
                inputs={"logits": np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 2.0]]), "labels": np.array([1, 2])})
    monkeypatch.setattr(adapters, "load", lambda name: OldStyle())
    record = Runner(manifest=[]).run(Check(case, "plain-kernel", "float64", "cpu", "vjp_logits"))
    assert record["outcome"] == "skipped" and record["reason"] == "not-offered"


def test_options_key_is_equal_exactly_when_the_option_values_are():
    weight = np.array([0.5, 2.0])
    key = options_key({"reduction": "mean", "weight": weight, "pos_weight": [1.0, 3.0]})
    assert key == options_key({"pos_weight": [1.0, 3.0], "weight": weight.copy(), "reduction": "mean"})
    assert hash(key) == hash(options_key({"pos_weight": (1.0, 3.0), "weight": weight.copy(), "reduction": "mean"}))
    different = [{"reduction": "sum", "weight": weight, "pos_weight": [1.0, 3.0]},
                 {"reduction": "mean", "weight": np.array([0.5, 2.5]), "pos_weight": [1.0, 3.0]},
                 {"reduction": "mean", "weight": weight.astype(np.float32), "pos_weight": [1.0, 3.0]},
                 {"reduction": "mean", "weight": weight.reshape(2, 1), "pos_weight": [1.0, 3.0]},
                 {"reduction": "mean", "weight": weight}]
    assert all(options_key(options) != key for options in different)
