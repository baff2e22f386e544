"""`hunt` finds an input a planted inaccuracy gets wrong, writes it as a case the suite loads
(literal inputs the dtype reads back exactly) with a manifest stub, and refuses bad input
with exit 2 and one line."""
import re

import numpy as np
import pytest

from conformance import adapters, cli
from conformance.adapters.api import Capability, results_in_modes
from conformance.adapters.numpy_adapter import NumpyAdapter
from conformance.cases import load_case_file
from conformance.hunt import output


class LosesOffsets(NumpyAdapter):
    """Sparse softmax cross-entropy by logsumexp(z) - z[label] without the row's maximum
    taken out first in float32: exact for small logits, wrong under a common offset."""

    def loss(self, op, prediction, labels, options, dtype, device):
        result = super().loss(op, prediction, labels, options, dtype, device)
        z = prediction.astype(np.float32)
        with np.errstate(all="ignore"):
            naive = np.log(np.sum(np.exp(z), axis=-1)) - np.take_along_axis(z, labels[:, None], -1)[:, 0]
        result.values = naive.astype(np.float64)
        return result


class CompiledLosesOffsets(NumpyAdapter):
    """Right eagerly; in its second mode ("compile") wrong as LosesOffsets, and compiled (a
    counted cost) once per shape, as a jit does: the bug only a compiled mode has."""

    capabilities = {"sparse_softmax_cross_entropy": Capability(
        NumpyAdapter.capabilities["sparse_softmax_cross_entropy"].implementation,
        dtypes=("float32",), differentiable=False, modes=("eager", "compile"))}
    shapes: set = set()

    def loss(self, op, prediction, labels, options, dtype, device):
        def compute(mode):
            if mode == "eager":
                return NumpyAdapter.loss(self, op, prediction, labels, options, dtype, device)
            self.shapes.add(prediction.shape)
            return LosesOffsets.loss(self, op, prediction, labels, options, dtype, device)
        return results_in_modes(self.capabilities[op].modes, compute)


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setattr(adapters, "load", lambda name: LosesOffsets())


def test_the_search_finds_what_a_planted_inaccuracy_gets_wrong(tmp_path, planted, capsys):
    out = tmp_path / "found.yaml"
    code = cli.main(["hunt", "--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype",
                     "float32", "--budget", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "the worst fails" in printed, printed
    (case,) = load_case_file(out)
    assert case.op == "sparse_softmax_cross_entropy" and case.dtypes == ("float32",)
    assert np.abs(case.inputs["logits"]).max() >= 80  # where exp overflows or a large offset rounds
    stub = (tmp_path / "found.manifest-stub.yaml").read_text()
    assert "case: hunt-sparse-softmax-cross-entropy-loss-float32" in stub and 'versions: "numpy>=' in stub


def test_a_compiled_mode_is_searched_at_one_shape_and_its_worst_confirmed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(adapters, "load", lambda name: CompiledLosesOffsets())
    out = tmp_path / "found.yaml"
    code = cli.main(["hunt", "--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype",
                     "float32", "--budget", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "the worst fails" in printed, printed
    tried = {mode: n for n, mode in re.findall(r"(\d+) in (eager|compile)", printed.split("\n")[0])}
    assert int(tried["eager"]) > 20 and int(tried["compile"]) > 20, printed
    searched = {shape for shape in CompiledLosesOffsets.shapes}
    assert (4, 8) in searched and len(searched) <= 1 + 8 * 2  # the search's shape, then confirmation and shrinking


def test_an_honest_framework_passes_the_same_search(tmp_path, capsys):
    out = tmp_path / "found.yaml"
    code = cli.main(["hunt", "--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype",
                     "float32", "--budget", "4", "--out", str(out)])
    assert code == 0 and "the worst passes" in capsys.readouterr().out


@pytest.mark.parametrize("value, dtype", [(0.1, "float32"), (1e-8, "float16"), (3.140625, "bfloat16"),
                                          (-30000.0, "float32"), (2.0 ** -20, "float64")])
def test_literals_are_the_shortest_decimal_the_dtype_reads_back(value, dtype):
    from reference.dtypes import numpy_dtype

    held = float(np.asarray(value).astype(numpy_dtype(dtype)))
    text = output.shortest(held, dtype)
    assert float(np.asarray(float(text)).astype(numpy_dtype(dtype))) == held
    assert len(text) <= len(repr(held))


@pytest.mark.parametrize("args, message", [
    (["--framework", "nosuch", "--op", "sparse_softmax_cross_entropy", "--dtype", "float32"], "unknown framework id"),
    (["--framework", "numpy", "--op", "nosuch", "--dtype", "float32"], "unknown op 'nosuch'"),
    (["--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype", "float8"], "unknown dtype"),
    (["--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype", "float32", "--budget", "0"],
     "--budget must be a positive number"),
    (["--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype", "float32", "--budget", "soon"],
     "--budget must be a positive number"),
    (["--framework", "numpy", "--op", "sparse_softmax_cross_entropy", "--dtype", "float32", "--quantity",
      "grad_logits"], "nothing to search: numpy does not differentiate"),
])
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert cli.main(["hunt", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_case_file_goes_into_a_new_folder_and_an_unwritable_one_is_one_line(tmp_path, capsys):
    args = ["hunt", "--framework", "numpy", "--op", "binary_crossentropy", "--dtype", "float64", "--budget", "2"]
    assert cli.main([*args, "--out", str(tmp_path / "new" / "found.yaml")]) == 0
    assert load_case_file(tmp_path / "new" / "found.yaml")
    blocked = tmp_path / "file"
    blocked.write_text("")
    capsys.readouterr()
    assert cli.main([*args, "--out", str(blocked / "found.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_the_deadline_inside_a_hypothesis_replay_group_ends_the_search_quietly():
    from hypothesis.errors import FlakyFailure

    from conformance.hunt import search as searching

    deadline = searching._OutOfTime()
    assert searching._out_of_time(deadline)
    assert searching._out_of_time(FlakyFailure("replayed", [deadline]))
    assert not searching._out_of_time(FlakyFailure("replayed", [deadline, ValueError("a real bug")]))
    assert not searching._out_of_time(ValueError("a real bug"))
