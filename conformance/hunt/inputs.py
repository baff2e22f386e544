"""Inputs for an op, drawn by hypothesis: small shapes, values over many magnitudes (common
logit offsets, confident and saturated rows), every draw inside the op's domain."""
from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st
from hypothesis.extra.numpy import arrays

from reference.declaration import Op
from reference.dtypes import numpy_dtype

MAGNITUDES = (1.0, 4.0, 30.0, 300.0, 3e3, 3e4)  # the spread of a row of logits
OFFSETS = (0.0, 0.0, 1.0, 100.0, 1e4, 1e6, -1e4)  # a common shift: free in exact arithmetic


def _floats(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


FIXED_ROWS, FIXED_CLASSES = 4, 8  # the one shape a compiled mode is searched at: compiled once


@st.composite
def problem(draw, op: Op, dtype: str, fixed_shape: bool = False) -> dict:
    """{prediction name: float64 array the dtype holds exactly, "labels": ...}; with
    fixed_shape, always FIXED_ROWS rows (of FIXED_CLASSES classes)."""
    rows = FIXED_ROWS if fixed_shape else draw(st.integers(1, 4))
    classes = (FIXED_CLASSES if fixed_shape else draw(st.integers(2, 8))) if op.class_axis else 0  # 0: no class axis
    shape = (rows, classes) if classes else (rows,)
    if op.prediction == "probs":
        prediction = draw(arrays(np.float64, shape, elements=_floats(0.0, 1.0)))
        if op.class_axis:  # rows that sum to about 1, as a softmax output does
            assume(np.all(prediction.sum(axis=-1) > 0))
            prediction = prediction / prediction.sum(axis=-1, keepdims=True)
    else:
        spread, offset = draw(st.sampled_from(MAGNITUDES)), draw(st.sampled_from(OFFSETS))
        prediction = draw(arrays(np.float64, shape, elements=_floats(-1.0, 1.0))) * spread + offset
    prediction = prediction.astype(numpy_dtype(dtype)).astype(np.float64)
    assume(np.all(np.isfinite(prediction)))
    if op.integer_labels:
        labels = draw(arrays(np.int64, (rows,), elements=st.integers(0, classes - 1)))
    elif op.prediction == "predictions":  # squared error: a target anywhere near the prediction
        labels = prediction + draw(arrays(np.float64, shape, elements=_floats(-1.0, 1.0))) * draw(
            st.sampled_from(MAGNITUDES))
    elif op.class_axis and draw(st.booleans()):  # one-hot rows
        labels = np.eye(classes)[draw(arrays(np.int64, (rows,), elements=st.integers(0, classes - 1)))]
    else:
        labels = draw(arrays(np.float64, shape, elements=_floats(0.0, 1.0)))
        if op.class_axis:
            assume(np.all(labels.sum(axis=-1) > 0))
            labels = labels / labels.sum(axis=-1, keepdims=True)
    if labels.dtype.kind == "f":
        labels = labels.astype(numpy_dtype(dtype)).astype(np.float64)
        assume(np.all(np.isfinite(labels)))
    return {op.prediction: prediction, "labels": labels}
