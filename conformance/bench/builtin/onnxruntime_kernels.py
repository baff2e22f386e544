"""ONNX Runtime's benchmark kernels: what `nox -s benchmark` times for the onnxruntime adapter
(conformance/adapters/onnxruntime_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import numpy as np

from conformance.adapters.api import Adapter, NotOffered
from conformance.adapters.onnxruntime_adapter import COMPOSED, DTYPES, FUSED, onnx_devices, session
from conformance.bench.contract import BenchKernel, NoDevice, Problem, Timed, plain_timed


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    return {
        "fused": BenchKernel("fused", "SoftmaxCrossEntropyLoss, one-node model, all graph optimisations",
                             lambda p: onnx_timed(FUSED, p)),
        "naive": BenchKernel("naive", "LogSoftmax then NegativeLogLikelihoodLoss, all graph optimisations",
                             lambda p: onnx_timed(COMPOSED, p)),
    }


def onnx_timed(nodes, problem: Problem) -> Timed:
    """One InferenceSession.run of the model (forward only: inference sessions do not differentiate)."""
    if problem.device not in onnx_devices():
        raise NoDevice("ONNX Runtime has no CUDA execution provider here")
    if problem.mode == "fwdbwd":
        raise NotOffered("ONNX Runtime inference sessions do not differentiate")
    if problem.dtype not in DTYPES:
        raise NotOffered(f"ONNX Runtime's CPU provider has no {problem.dtype} SoftmaxCrossEntropyLoss")
    run = session(nodes, problem.dtype, 2, "none", None, False, "optimized", problem.device)

    def step(x, y):
        return tuple(run.run(None, {"x": x, "y": y}))

    return plain_timed(problem, lambda: (problem.logits.astype(np.dtype(problem.dtype)), problem.labels.copy()),
                       step, lambda a: np.asarray(a, np.float64 if a.dtype == np.float64 else np.float32))
