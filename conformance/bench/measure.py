"""What the benchmarks measure besides the kernels: the inputs, the float64 reference in row
chunks, the error against it, and the byte model.
"""
import math

import numpy as np

from reference.dtypes import numpy_dtype
from reference.ops.softmax import sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_grad

# A sanity gate, not the conformance tolerance (that is the conformance suite, in ULPs): a kernel
# whose loss is further than this from the float64 reference, relative to max(1, |loss|), is
# wrong, and a wrong kernel is not timed.
SANITY_REL = {"float64": 1e-10, "float32": 1e-4, "float16": 8e-3, "bfloat16": 6e-2}
LABEL_BYTES = 8  # the byte model counts int64 labels for every implementation
LATENCY_BOUND_S = 20e-6  # below this a call is dispatch-bound: GB/s means little


def itemsize(dtype):
    return numpy_dtype(dtype).itemsize


# ---------------------------------------------------------------- inputs and the reference

def make_inputs(n, c, dtype, seed=0):
    """Logits ~ 0.5 N(0, 1) (naive log(softmax) stays finite) already rounded to `dtype` but held
    as float32 (or float64), and int64 labels: every framework and the reference see the same values."""
    rng = np.random.default_rng([seed, n, c])
    holder = np.float64 if dtype == "float64" else np.float32
    logits = rng.standard_normal((n, c), dtype=np.float32)
    logits *= 0.5
    if dtype in ("bfloat16", "float16"):
        logits = logits.astype(numpy_dtype(dtype)).astype(np.float32)
    labels = rng.integers(0, c, size=n, dtype=np.int64)
    return logits.astype(holder, copy=False), labels


CHUNK_BYTES = 16 << 20  # below glibc's largest mmap threshold (32 MiB): blocks are reused, not faulted in


def chunk_rows(c, chunk_bytes=CHUNK_BYTES):
    """Rows per chunk so that one float64 [rows, C] temporary is about chunk_bytes."""
    return max(1, chunk_bytes // (8 * c))


def reference_loss_chunked(logits, labels, dtype="float64", chunk_bytes=CHUNK_BYTES):
    """reference.ops.softmax.sparse_softmax_cross_entropy, of the tier a check of `dtype` uses
    (reference/tiers.py), over blocks of rows: each row is reduced on its own, so blocks give
    the same values while the double-double tier's temporaries (about 55x a block) stay small."""
    n, c = logits.shape
    rows = chunk_rows(c, chunk_bytes)
    out = np.empty(n, np.float64)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        out[start:stop] = sparse_softmax_cross_entropy(logits[start:stop], labels[start:stop], -1, dtype)
    return out


def grad_error_chunked(logits, labels, grad, dtype="float64", chunk_bytes=CHUNK_BYTES):
    """max |grad - reference.ops.softmax.sparse_softmax_cross_entropy_grad| (the tier of `dtype`),
    a block of rows at a time."""
    n, c = logits.shape
    rows = chunk_rows(c, chunk_bytes)
    worst = 0.0
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        diff = sparse_softmax_cross_entropy_grad(logits[start:stop], labels[start:stop], -1, dtype)
        diff -= grad[start:stop]
        err = float(np.max(np.abs(diff)))
        if math.isnan(err):
            return math.nan
        worst = max(worst, err)
    return worst


def max_abs_error(actual, expected):
    actual = np.asarray(actual, np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"loss has shape {actual.shape}, expected {expected.shape}")
    diff = np.abs(actual - expected)
    return math.nan if np.isnan(diff).any() else float(diff.max())


def sanity_bound(dtype, expected):
    return SANITY_REL[dtype] * max(1.0, float(np.max(np.abs(expected))))


# ---------------------------------------------------------------- the byte model

def model_bytes(n, c, dtype, mode, dense_labels=False):
    """Minimal traffic of the problem, the same for every implementation of it.

    forward: the logits read once (E = N*C*itemsize), the labels (int64; dense labels: E) and
    the loss written (N*itemsize). forward+backward: that and the gradient written once (E),
    which needs the row kept on chip between log-sum-exp and gradient.
    """
    e = n * c * itemsize(dtype)
    labels = e if dense_labels else LABEL_BYTES * n
    total = e + labels + n * itemsize(dtype)
    return total + e if mode == "fwdbwd" else total
