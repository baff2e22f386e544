"""NumPy's benchmark kernels: what `nox -s benchmark` times for the numpy adapter
(conformance/adapters/numpy_adapter.py), plain calls on the CPU; `numpy_timed` also serves
keras-numpy and plug-ins. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import numpy as np

from conformance.adapters.api import Adapter, NotOffered
from reference.dtypes import numpy_dtype
from conformance.bench.contract import BenchKernel, NoDevice, Problem, Timed, first_call, rotating


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    return {
        "lse": BenchKernel("fused", "log-sum-exp form in the input dtype (NumPy has no fused kernel)",
                           lambda problem: numpy_timed(lse_loss, problem)),
        "naive": BenchKernel("naive", "-log(softmax(z))[label], softmax as exp(z - max) / sum",
                             lambda problem: numpy_timed(naive_loss, problem)),
    }


def lse_loss(x, y):
    """Sparse softmax cross-entropy as log-sum-exp minus the label's logit, per row."""
    m = np.max(x, axis=1, keepdims=True)
    s = x - m
    return np.log(np.sum(np.exp(s), axis=1)) - s[np.arange(len(y)), y]


def naive_loss(x, y):
    """-log(softmax(x))[label]: the composition a first draft writes."""
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.log(p)[np.arange(len(y)), y]


def numpy_timed(loss_fn, problem: Problem, who: str = "NumPy") -> Timed:
    """A plain call of loss_fn(logits, labels) on the CPU; forward only (NumPy has no autodiff)."""
    if problem.device != "cpu":
        raise NoDevice(f"{who} runs on the CPU only")
    if problem.mode == "fwdbwd":
        raise NotOffered(f"{who} has no automatic differentiation")
    xs = [problem.logits.astype(numpy_dtype(problem.dtype), copy=True) for _ in range(problem.copies)]
    ys = [problem.labels.copy() for _ in range(problem.copies)]
    take = rotating(xs, ys)

    def call():
        return (loss_fn(*take()),)

    timed = Timed(call, lambda out: (np.asarray(out[0], np.float64), None), lambda out: "cpu",
                  info={"label_dtype": "int64"})
    _, timed.first_call_s = first_call(call)
    return timed
