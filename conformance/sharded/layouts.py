"""How a check's inputs are split across ranks: one axis (vocab, batch or sequence) over N ranks.

A case names its layout as a mapping, `{vocab: 2}`, `{batch: 4}`, `{sequence: 2}`. The class
axis goes over tensor-parallel ranks (vocab), the first axis over data-parallel ranks (batch),
and the first axis that is neither over sequence-parallel ranks (sequence; a prediction of
three or more dimensions).

An uneven axis is split as torch.distributed.tensor's `Shard(dim)` splits it (torch.chunk
semantics): every shard holds ceil(L / N) positions except the last non-empty one, and the
ranks after it hold none. V = 7 on 2 ranks is 4 + 3; 32001 on 2 is 16001 + 16000; 6 on 4 is
2 + 2 + 2 + 0. Megatron-core and DeepSpeed take the same contiguous ranges as their
vocab_start_index / vocab_end_index (Megatron asks for equal shards; `bounds` gives them).
A split larger than its axis would leave a rank with nothing by construction, and is refused.

Pure NumPy: nothing here knows a framework.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

AXES = ("vocab", "batch", "sequence")


class LayoutError(ValueError):
    """A layout that cannot be taken: the message names where (file and case) and the key."""


@dataclass(frozen=True)
class Layout:
    axis: str  # vocab, batch or sequence
    ranks: int  # how many ranks share the axis

    def __post_init__(self):
        if self.axis not in AXES:
            raise LayoutError(f"{self.axis!r} is not an axis; expected one of {', '.join(AXES)}")
        if isinstance(self.ranks, bool) or not isinstance(self.ranks, int) or self.ranks < 1:
            raise LayoutError(f"the number of ranks must be an int >= 1, got {self.ranks!r}")

    @property
    def name(self) -> str:
        """As a check id carries it: vocab2, batch4."""
        return f"{self.axis}{self.ranks}"

    def as_record(self) -> dict:
        return {"axis": self.axis, "ranks": self.ranks}

    def axis_index(self, ndim: int, class_axis: int = -1) -> int:
        """The prediction's axis this layout splits, for a prediction of ndim dimensions whose
        classes lie on class_axis."""
        class_axis = _normalised(class_axis, ndim)
        if self.axis == "vocab":
            return class_axis
        others = [i for i in range(ndim) if i != class_axis]
        wanted = 0 if self.axis == "batch" else 1
        if len(others) <= wanted:
            raise LayoutError(f"layout {self.axis}: a prediction of {ndim} dimensions has no {self.axis} axis")
        return others[wanted]

    def labels_axis_index(self, ndim: int, class_axis: int = -1) -> int | None:
        """The labels' axis this layout splits (integer labels: the prediction's axes without the
        class axis); None under vocab, where every rank holds all the labels."""
        if self.axis == "vocab":
            return None
        prediction_axis = self.axis_index(ndim, class_axis)
        return prediction_axis - (prediction_axis > _normalised(class_axis, ndim))


def parse_layout(mapping: Any, where: str = "layout") -> Layout:
    """A Layout from a case's mapping such as {vocab: 2}. `where` names the file and case
    ("cases/sharded.yaml: case uneven-vocab"), so each error names file, case and key."""
    if not isinstance(mapping, Mapping) or len(mapping) != 1:
        raise LayoutError(f"{where}: layout must be a mapping of one axis to a number of ranks "
                          f"(e.g. {{vocab: 2}}), got {mapping!r}")
    (axis, ranks), = mapping.items()
    try:
        return Layout(axis, ranks)
    except LayoutError as exc:
        raise LayoutError(f"{where}: layout key {axis!r}: {exc}") from None


def check_shape(layout: Layout, shape: Sequence[int], class_axis: int = -1, where: str = "layout") -> None:
    """Refuse a layout the prediction's shape cannot take: no such axis, or more ranks than positions."""
    try:
        index = layout.axis_index(len(shape), class_axis)
    except LayoutError as exc:
        raise LayoutError(f"{where}: layout key {layout.axis!r}: {exc}") from None
    if layout.ranks > shape[index]:
        raise LayoutError(f"{where}: layout key {layout.axis!r}: {layout.ranks} ranks is a split larger than the "
                          f"{layout.axis} axis (axis {index} of shape {list(shape)} has {shape[index]})")


def shard_sizes(length: int, ranks: int) -> list[int]:
    """How many positions each rank holds: torch.chunk's ceil(L / N) per rank, the rest empty."""
    chunk = -(-length // ranks)
    return [max(0, min(chunk, length - rank * chunk)) for rank in range(ranks)]


def bounds(length: int, ranks: int) -> list[tuple[int, int]]:
    """Each rank's [start, end) along the axis (vocab_start_index, vocab_end_index)."""
    sizes = shard_sizes(length, ranks)
    ends = np.cumsum(sizes)
    return [(int(end - size), int(end)) for end, size in zip(ends, sizes)]


def split_axis(array: np.ndarray, axis: int, ranks: int) -> list[np.ndarray]:
    """The N shards of array along axis (copies, so a rank that writes into its shard touches no other)."""
    array = np.asarray(array)
    return [np.take(array, np.arange(lo, hi), axis=axis) for lo, hi in bounds(array.shape[axis], ranks)]


def gather_axis(shards: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """The inverse of split_axis: the shards concatenated in rank order."""
    return np.concatenate([np.asarray(shard) for shard in shards], axis=axis)


def split(prediction: np.ndarray, layout: Layout, class_axis: int = -1) -> list[np.ndarray]:
    """The prediction's shards, one per rank, in rank order."""
    return split_axis(prediction, layout.axis_index(np.ndim(prediction), class_axis), layout.ranks)


def gather(shards: Sequence[np.ndarray], layout: Layout, class_axis: int = -1) -> np.ndarray:
    """The global array from its shards (a gradient's, say), in rank order."""
    if len(shards) != layout.ranks:
        raise LayoutError(f"layout {layout.name}: {len(shards)} shards for {layout.ranks} ranks")
    return gather_axis(shards, layout.axis_index(np.ndim(shards[0]), class_axis))


def split_labels(labels: np.ndarray, layout: Layout, prediction_ndim: int, class_axis: int = -1) -> list[np.ndarray]:
    """Integer labels as each rank holds them: all of them under vocab, their shard otherwise."""
    axis = layout.labels_axis_index(prediction_ndim, class_axis)
    if axis is None:
        return [np.array(labels, copy=True) for _ in range(layout.ranks)]
    return split_axis(labels, axis, layout.ranks)


def _normalised(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise LayoutError(f"class axis {axis} is outside a prediction of {ndim} dimensions")
    return axis % ndim
