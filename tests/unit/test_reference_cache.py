"""References shared by the processes of a run: keyed by everything that decides the value,
returned bit for bit, and read instead of computed."""
import numpy as np
import pytest

from conformance.cases import Case
from conformance.core import reference_cache, references, runner
from conformance.core.checks import Check
from conformance.core.runner import Runner

OP = "sparse_softmax_cross_entropy"


def case(name="c", logits=((0.5, -1.0, 2.0), (1e-3, 0.0, -7.25)), labels=(2, 0), **options):
    return Case(name=name, op=OP, path="<test>", options=options,
                inputs={"logits": np.array(logits), "labels": np.array(labels, np.int64)})


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(reference_cache.CACHE_VARIABLE, str(tmp_path))
    return tmp_path


def test_every_part_of_what_decides_a_reference_changes_its_key():
    base = reference_cache.key(case(), "exact", "float32", "loss")
    changed = [
        reference_cache.key(case(name="d"), "exact", "float32", "loss"),  # seeds cotangents and directions
        reference_cache.key(case(logits=((0.5, -1.0, 2.0), (1e-3, 0.0, -7.0))), "exact", "float32", "loss"),
        reference_cache.key(case(labels=(2, 1)), "exact", "float32", "loss"),
        reference_cache.key(case(reduction="sum"), "exact", "float32", "loss"),
        reference_cache.key(case(sample_weight=np.array([1.0, 2.0])), "exact", "float32", "loss"),
        reference_cache.key(case(sample_weight=np.array([1.0, 2.5])), "exact", "float32", "loss"),
        reference_cache.key(case(), "other", "float32", "loss"),
        reference_cache.key(case(), "exact", "float64", "loss"),
        reference_cache.key(case(), "exact", "float32", "grad_logits"),
    ]
    assert len({base, *changed}) == len(changed) + 1
    assert reference_cache.key(case(), "exact", "float32", "loss") == base  # and nothing else does
    # a label of 1 as an integer and as a float are different inputs
    as_float = Case(name="c", op=OP, path="<t>", inputs={"logits": np.zeros((1, 2)), "labels": np.array([1.0])})
    as_int = Case(name="c", op=OP, path="<t>", inputs={"logits": np.zeros((1, 2)), "labels": np.array([1])})
    assert reference_cache.key(as_float, "v", "float32", "loss") != reference_cache.key(as_int, "v", "float32", "loss")


def test_without_a_directory_nothing_is_kept(monkeypatch):
    monkeypatch.delenv(reference_cache.CACHE_VARIABLE, raising=False)
    reference_cache.store(case(), "exact", "float32", "loss", (np.ones(2), np.ones(2)))
    assert reference_cache.load(case(), "exact", "float32", "loss") is None


def test_values_come_back_bit_for_bit(cache):
    expected, scale = np.array([0.1, np.nextafter(1.0, 2.0), -np.inf, np.nan]), np.array(3.5)
    reference_cache.store(case(), "exact", "float32", "loss", (expected, scale))
    back, back_scale = reference_cache.load(case(), "exact", "float32", "loss")
    assert back.tobytes() == expected.tobytes() and back_scale.shape == () and back_scale == 3.5
    assert not list(cache.glob("*.tmp"))  # written whole, then renamed into place


def test_a_second_process_reads_what_the_first_computed(cache, monkeypatch):
    check = Check(case(), "numpy", "float32", "cpu", "loss")
    first = Runner([]).references.values(check.case, "exact", runner.cast_inputs(check.case, "float32"),
                                         "float32", "loss")

    def never(*args):
        raise AssertionError("computed again")

    monkeypatch.setattr(references, "reference_values", never)
    second = Runner([]).references.values(check.case, "exact", runner.cast_inputs(check.case, "float32"),
                                          "float32", "loss")
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second))
