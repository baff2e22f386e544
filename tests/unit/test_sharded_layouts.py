"""Layouts: a case's {axis: ranks} read with errors that name the key, and the split of a global
array into shards (torch.chunk semantics, as DTensor's Shard) and back."""
import numpy as np
import pytest

from conformance.sharded import layouts
from conformance.sharded.layouts import Layout, LayoutError, check_shape, parse_layout

WHERE = "cases/sharded.yaml: case uneven-vocab"


def test_a_mapping_of_one_axis_is_a_layout():
    layout = parse_layout({"vocab": 2}, WHERE)
    assert layout == Layout("vocab", 2) and layout.name == "vocab2"
    assert layout.as_record() == {"axis": "vocab", "ranks": 2}
    assert parse_layout({"sequence": 1}).ranks == 1  # one rank: the unsharded call through the ranks


@pytest.mark.parametrize("mapping, words", [
    ({"vocabulary": 2}, ["'vocabulary'", "not an axis", "vocab, batch, sequence"]),
    ({"vocab": 0}, ["'vocab'", "int >= 1", "got 0"]),
    ({"batch": "2"}, ["'batch'", "int >= 1", "got '2'"]),
    ({"batch": 2.0}, ["'batch'", "int >= 1"]),
    ({"batch": True}, ["'batch'", "int >= 1"]),
    ({"vocab": 2, "batch": 2}, ["one axis"]),
    ("vocab", ["mapping"]),
])
def test_a_bad_layout_is_refused_naming_file_case_and_key(mapping, words):
    with pytest.raises(LayoutError) as raised:
        parse_layout(mapping, WHERE)
    message = str(raised.value)
    assert message.startswith(WHERE + ":")
    for word in words:
        assert word in message


def test_a_split_larger_than_its_axis_is_refused_at_load():
    with pytest.raises(LayoutError, match=r"case uneven-vocab: layout key 'vocab': 4 ranks is a split larger "
                                          r"than the vocab axis \(axis 1 of shape \[5, 3\] has 3\)"):
        check_shape(Layout("vocab", 4), (5, 3), where=WHERE)
    with pytest.raises(LayoutError, match="layout key 'batch'.*axis 0 of shape"):
        check_shape(Layout("batch", 6), (5, 3), where=WHERE)
    with pytest.raises(LayoutError, match="layout key 'sequence'.*has no sequence axis"):
        check_shape(Layout("sequence", 2), (5, 3), where=WHERE)
    check_shape(Layout("vocab", 3), (5, 3), where=WHERE)  # as many ranks as classes: taken


@pytest.mark.parametrize("length, ranks, sizes", [
    (7, 2, [4, 3]), (32001, 2, [16001, 16000]), (8, 2, [4, 4]), (6, 4, [2, 2, 2, 0]), (5, 4, [2, 2, 1, 0]),
    (3, 3, [1, 1, 1]), (1, 1, [1]),
])
def test_uneven_axes_split_as_torch_chunk(length, ranks, sizes):
    assert layouts.shard_sizes(length, ranks) == sizes
    assert layouts.bounds(length, ranks)[-1][1] == length
    assert [hi - lo for lo, hi in layouts.bounds(length, ranks)] == sizes


@pytest.mark.parametrize("length, ranks", [(7, 2), (7, 3), (5, 4), (6, 4), (9, 4), (12, 5), (32001, 2), (2, 2)])
def test_the_split_is_dtensors_shard_split(length, ranks):
    torch = pytest.importorskip("torch")
    from torch.distributed.tensor import Shard

    shards, _ = Shard(0)._split_tensor(torch.arange(length), ranks, with_padding=False)
    ours = layouts.split_axis(np.arange(length), 0, ranks)
    assert [s.tolist() for s in ours] == [s.tolist() for s in shards]


def test_the_axis_each_layout_splits():
    # (batch, sequence, vocab) with the classes last, as cases hold them
    assert [Layout(a, 2).axis_index(3) for a in ("batch", "sequence", "vocab")] == [0, 1, 2]
    # (batch, classes, sequence), PyTorch's layout
    assert [Layout(a, 2).axis_index(3, class_axis=1) for a in ("batch", "sequence", "vocab")] == [0, 2, 1]
    assert Layout("sequence", 2).labels_axis_index(3, class_axis=1) == 1
    assert Layout("sequence", 2).labels_axis_index(3) == 1
    assert Layout("batch", 2).labels_axis_index(2) == 0
    assert Layout("vocab", 2).labels_axis_index(2) is None


@pytest.mark.parametrize("axis", ["vocab", "batch", "sequence"])
@pytest.mark.parametrize("class_axis", [-1, 1])
def test_gather_inverts_split(axis, class_axis):
    prediction = np.arange(5 * 7 * 3, dtype=np.float64).reshape(5, 7, 3)
    layout = Layout(axis, 2)
    shards = layouts.split(prediction, layout, class_axis)
    index = layout.axis_index(3, class_axis)
    assert [s.shape[index] for s in shards] == layouts.shard_sizes(prediction.shape[index], 2)
    assert np.array_equal(layouts.gather(shards, layout, class_axis), prediction)
    shards[0][...] = -1  # a rank writing into its shard touches no one else's, nor the global array
    assert prediction.min() == 0


def test_labels_are_whole_under_vocab_and_split_otherwise():
    labels = np.arange(10).reshape(5, 2)  # (batch, sequence) of a (5, 2, V) prediction
    whole = layouts.split_labels(labels, Layout("vocab", 2), 3)
    assert all(np.array_equal(part, labels) for part in whole)
    assert [p.tolist() for p in layouts.split_labels(labels, Layout("batch", 2), 3)] == [
        [[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9]]]
    assert [p.tolist() for p in layouts.split_labels(labels, Layout("sequence", 2), 3)] == [
        [[0], [2], [4], [6], [8]], [[1], [3], [5], [7], [9]]]


def test_gather_refuses_the_wrong_number_of_shards():
    with pytest.raises(LayoutError, match="1 shards for 2 ranks"):
        layouts.gather([np.zeros((2, 3))], Layout("vocab", 2))
