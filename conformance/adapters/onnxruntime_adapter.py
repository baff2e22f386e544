"""ONNX Runtime: the ONNX operators SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss, each
built as a one-node model and run by an InferenceSession.

This is how an exported model computes its loss. ONNX has no binary cross-entropy and no
squared-error operator, and ONNX Runtime's inference sessions do not differentiate, so only
losses are offered. Each call runs twice: with every graph optimisation (ONNX Runtime's
default, which may fuse and rewrite the operator's function body) and with none.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from conformance.adapters.api import Adapter, Capability, Result, move_class_axis, results_in_modes

ELEMENT_TYPES = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
DTYPES = tuple(ELEMENT_TYPES)  # the CPU provider has no bfloat16 ReduceMax, so no bfloat16 loss
OPSET = 22
MODES = {"optimized": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
         "unoptimized": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}


def onnx_devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if "CUDAExecutionProvider" in ort.get_available_providers() else ("cpu",)


def _provider(device: str) -> str:
    return "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"


@lru_cache(maxsize=None)
def session(nodes: tuple, dtype: str, rank: int, reduction: str, ignore_index: int | None, weighted: bool,
            mode: str, device: str) -> ort.InferenceSession:
    """A session for the chain of operators `nodes` (names) over scores x of this rank and int64
    labels y, with symbolic dimensions, so that one session serves every case of the same
    structure."""
    element = ELEMENT_TYPES[dtype]
    dims = [f"d{i}" for i in range(rank)]
    inputs = [helper.make_tensor_value_info("x", element, dims),
              helper.make_tensor_value_info("y", TensorProto.INT64, dims[:1] + dims[2:])]
    loss_inputs = ["x", "y"]
    if weighted:
        inputs.append(helper.make_tensor_value_info("w", element, ["d1"]))
        loss_inputs.append("w")
    attributes: dict[str, Any] = {"reduction": reduction}
    if ignore_index is not None:
        attributes["ignore_index"] = ignore_index
    graph_nodes = []
    if nodes == ("LogSoftmax", "NegativeLogLikelihoodLoss"):
        graph_nodes.append(helper.make_node("LogSoftmax", ["x"], ["log_p"], axis=1))
        loss_inputs[0] = "log_p"
    graph_nodes.append(helper.make_node(nodes[-1], loss_inputs, ["loss"], **attributes))
    out_shape = dims[:1] + dims[2:] if reduction == "none" else []
    graph = helper.make_graph(graph_nodes, "xent", inputs, [helper.make_tensor_value_info("loss", element, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.graph_optimization_level = MODES[mode]
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=[_provider(device)])


FUSED = ("SoftmaxCrossEntropyLoss",)
COMPOSED = ("LogSoftmax", "NegativeLogLikelihoodLoss")


class OnnxRuntimeAdapter(Adapter):
    framework = "onnxruntime"
    packages = ("onnxruntime", "onnx")
    capabilities = {
        "sparse_softmax_cross_entropy": Capability(FUSED, options={"weight", "ignore_index"}, dtypes=DTYPES,
                                                   modes=tuple(MODES), differentiable=False),
    }

    def version(self):
        return f"{ort.__version__} (onnx {onnx.__version__}, opset {OPSET})"

    devices = staticmethod(onnx_devices)

    def loss(self, op, prediction, labels, options, dtype, device):
        nodes = self.capability(op).implementation  # the chain of operators the model holds
        unbatched = prediction.ndim == 1  # the operators need a batch axis: one example becomes [1, C]
        if unbatched:
            prediction, labels = prediction[None], np.asarray(labels)[None]
        # ONNX puts the classes second: scores [N, C, d1, ...], labels [N, d1, ...]
        scores = np.transpose(prediction, move_class_axis(prediction.ndim, options.get("axis", -1)))
        feeds = {"x": np.ascontiguousarray(scores.astype(np.dtype(dtype))), "y": np.asarray(labels, np.int64)}
        weight = options.get("weight")
        if weight is not None:
            feeds["w"] = np.asarray(weight, np.dtype(dtype))
        reduction = options.get("reduction", "none")
        def compute(mode):
            run = session(nodes, dtype, scores.ndim, reduction, options.get("ignore_index"), weight is not None,
                          mode, device)
            (out,) = run.run(None, feeds)
            where = "cuda" if run.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
            if unbatched and reduction == "none":
                out = out[0]
            return Result(np.asarray(out, np.float64), str(out.dtype), where, mode)
        return results_in_modes(tuple(MODES), compute)

class OnnxRuntimeComposed(OnnxRuntimeAdapter):
    composition = "LogSoftmax, then NegativeLogLikelihoodLoss (two ONNX operators)"
    capabilities = {
        "sparse_softmax_cross_entropy": Capability(COMPOSED, dtypes=DTYPES, modes=tuple(MODES), differentiable=False),
    }
