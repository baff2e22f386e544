"""PyTorch's torch.nn.functional losses, run eagerly and under torch.compile (inductor).

Inductor generates its own kernels (C++ on the CPU, Triton on CUDA) for the whole loss, so
the compiled loss and its compiled backward are checked as a mode of their own: a check passes
only when both modes do. One compiled function per implementation and options, with shapes
dynamic and the recompile limits lifted (dynamo otherwise falls back to eager after eight
recompiles, silently); each new option value or dtype is one compilation.
"""
from typing import Any, Callable

import torch
import torch.nn.functional as F

from conformance.adapters import torch_linear
from conformance.adapters.api import Adapter, Call, Capability, Result, elementwise_reduce, move_class_axis
from conformance.adapters.kernel_modules import moved_to_bench
# the shared helpers, also imported from here by plug-ins built on PyTorch
from conformance.adapters.torch_common import (DTYPES, MODES, autograd, compile_available, compiled, in_modes,  # noqa: F401
                                               option_tensors, probe_backward, to_result, to_tensor, torch_devices)

_FORWARD_DERIVATIVES: dict[Callable[..., Any], Callable[..., Any]] = {}  # implementation -> its jvp


def forward_derivative(implementation):
    """(x, v, labels, options) -> d implementation(x, labels, options) along v, through
    torch.func.jvp: one function, so that torch.compile traces the forward mode whole."""
    if implementation not in _FORWARD_DERIVATIVES:
        def along(x, v, labels, options):
            return torch.func.jvp(lambda t: implementation(t, labels, options), (x,), (v,))[1]
        _FORWARD_DERIVATIVES[implementation] = along
    return _FORWARD_DERIVATIVES[implementation]


def _extra(options):
    """The keyword arguments F.cross_entropy takes from the canonical options."""
    extra = {}
    if options.get("label_smoothing"):
        extra["label_smoothing"] = options["label_smoothing"]
    if options.get("ignore_index") is not None:
        extra["ignore_index"] = options["ignore_index"]
    return extra


def _weights(name, x, options):
    """{"weight": tensor} from a canonical option (sample_weight or class weight), or {}."""
    if options.get(name) is None:
        return {}
    return {"weight": torch.as_tensor(options[name], dtype=x.dtype, device=x.device)}


def _classes_second(t, options):
    return t.permute(move_class_axis(t.ndim, options.get("axis", -1))) if t.ndim > 1 else t


def sigmoid_cross_entropy(x, y, options):
    pos = options.get("pos_weight")
    pos = None if pos is None else torch.as_tensor(pos, dtype=x.dtype, device=x.device)
    return F.binary_cross_entropy_with_logits(x, y, reduction=options.get("reduction", "none"), pos_weight=pos,
                                              **_weights("sample_weight", x, options))


def binary_crossentropy(p, y, options):
    return F.binary_cross_entropy(p, y, reduction=options.get("reduction", "none"),
                                  **_weights("sample_weight", p, options))


def softmax_cross_entropy(z, y, options):
    return F.cross_entropy(_classes_second(z, options), _classes_second(y, options),
                           reduction=options.get("reduction", "none"), **_extra(options),
                           **_weights("weight", z, options))


def sparse_softmax_cross_entropy(z, labels, options):
    return F.cross_entropy(_classes_second(z, options), labels, reduction=options.get("reduction", "none"),
                           **_extra(options), **_weights("weight", z, options))


def mean_squared_error(a, y, options):
    return F.mse_loss(a, y, reduction=options.get("reduction", "none"))


def nll_of_log_softmax(z, labels, options):
    return F.nll_loss(F.log_softmax(z, dim=1), labels, reduction=options.get("reduction", "none"))


def dense_of_log_softmax(z, y, options):
    return elementwise_reduce(-(y * F.log_softmax(z, dim=1)).sum(dim=1), options.get("reduction", "none"),
                              torch.sum, torch.mean)


class TorchAdapter(Adapter):
    framework = "torch"
    packages = ("torch",)
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"pos_weight", "sample_weight"},
                                            modes=MODES),
        "binary_crossentropy": Capability(binary_crossentropy, variant="torch_clamp_log", options={"sample_weight"},
                                          modes=MODES),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, options={"label_smoothing", "weight"}, modes=MODES),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy, modes=MODES,
                                                   options={"label_smoothing", "weight", "ignore_index"}),
        "mean_squared_error": Capability(mean_squared_error, modes=MODES),
        **({"linear_cross_entropy": Capability(torch_linear.linear_cross_entropy, options=torch_linear.OPTIONS,
                                               modes=torch_linear.LINEAR_MODES)} if torch_linear.AVAILABLE else {}),
    }


    devices = staticmethod(torch_devices)

    def environment(self):
        return {**super().environment(), "modes": list(MODES),
                "compile": "torch.compile(fullgraph=True, dynamic=True), inductor" if "compile" in MODES
                else "not run: no C++ compiler for inductor's CPU code"}

    def _function(self, op, labels, options, device="cpu", compile=False):
        implementation, tensors = self.capability(op).implementation, option_tensors(options, device)
        if compile:
            run = compiled(implementation, tensors)
            return lambda x: run(x, labels)
        return lambda x: implementation(x, labels, tensors)

    def loss(self, op, prediction, labels, options, dtype, device):
        if op == "linear_cross_entropy":
            return torch_linear.loss(prediction, labels, options, dtype, device, self.capability(op).modes)
        x, y = to_tensor(prediction, dtype, device), to_tensor(labels, dtype, device)
        with torch.no_grad():
            return in_modes(lambda compile: self._function(op, y, options, device, compile)(x),
                            self.capability(op).modes)

    def jvp(self, op, prediction, labels, options, dtype, device, direction):
        x, y = to_tensor(prediction, dtype, device), to_tensor(labels, dtype, device)
        v = torch.as_tensor(direction, dtype=x.dtype, device=x.device)
        forward, tensors = forward_derivative(self.capability(op).implementation), option_tensors(options, device)
        return in_modes(lambda compile: compiled(forward, tensors)(x, v, y) if compile else forward(x, v, y, tensors),
                        self.capability(op).modes)

    def gradient(self, call: Call) -> Result:
        if call.op == "linear_cross_entropy":
            return torch_linear.grad(call.prediction, call.labels, call.options, call.dtype, call.device, call.wrt,
                                     call.cotangent, self.capability(call.op).modes)
        on_labels = call.wrt == "labels"

        def run(compile):  # fresh leaves per mode: one mode's graph must not see the other's
            x = to_tensor(call.prediction, call.dtype, call.device, not on_labels)
            y = to_tensor(call.labels, call.dtype, call.device, on_labels)
            if on_labels:
                return autograd(lambda t: self._function(call.op, t, call.options, call.device, compile)(x), y,
                                call.cotangent)[1]
            return autograd(self._function(call.op, y, call.options, call.device, compile), x, call.cotangent)[1]
        return in_modes(run, self.capability(call.op).modes)

    def backward_probe(self, op, prediction, labels, options, dtype, device, cotangent):
        if op == "linear_cross_entropy":
            return torch_linear.probe(prediction, labels, options, dtype, device, cotangent)
        x, y = to_tensor(prediction, dtype, device, True), to_tensor(labels, dtype, device)
        return probe_backward(self._function(op, y, options, device), x, y, cotangent)

class TorchComposed(TorchAdapter):
    composition = "F.log_softmax, then F.nll_loss (dense labels: -(y * F.log_softmax).sum)"
    capabilities = {"sparse_softmax_cross_entropy": Capability(nll_of_log_softmax, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, modes=MODES)}


# the benchmark helpers plug-ins imported from here, now in conformance/bench/builtin/torch_kernels.py
__getattr__ = moved_to_bench(__name__, ("torch_timed", "cuda_peak_extra", "GPU_PROBES"))
