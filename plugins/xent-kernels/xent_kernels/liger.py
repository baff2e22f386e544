"""Liger-Kernel's cross-entropy, LigerCrossEntropyFunction: one Triton kernel computes the loss
and, when the logits require a gradient, the gradient in the same pass, which it stores into
the logits tensor itself to save memory; backward then scales the stored gradient. And its
fused linear cross-entropy, LigerFusedLinearCrossEntropyFunction: the LM head's logits made
chunk by chunk of tokens and handed to that kernel, never the whole [N, V] at once.

Options: ignore_index, label_smoothing (PyTorch's convention: eps / V on every class),
z_loss (its lse_square_scale), softcap and class weights. Logits are [tokens, vocabulary].
"""
from xent_kernels import triton_device  # first: it decides TRITON_INTERPRET before Triton kernels are made

from importlib import metadata

import numpy as np
import torch
from liger_kernel.ops.cross_entropy import LigerCrossEntropyFunction
from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction

from conformance.adapters.api import Adapter, Call, Capability, NotOffered, Result
from conformance.adapters.torch_adapter import autograd, probe_backward, to_result, to_tensor
from conformance.adapters.torch_common import leaves, read_back
from conformance.bench.builtin.torch_kernels import GPU_PROBES, torch_timed
from conformance.bench.contract import BenchKernel

# Options whose code path uses what Triton's interpreter does not have: a Python float where
# the kernel calls .to() on a tensor, and libdevice's tanh (each fails under TRITON_INTERPRET=1).
INTERPRETER_LACKS = {
    "softcap": "Liger's softcap calls libdevice tanh, which Triton's interpreter does not provide",
    "weight": "Liger's class weights call .to() on a Python float, which Triton's interpreter passes unconverted",
}
LIGER_DEFAULT_IGNORE_INDEX = -100


def two_dimensional(prediction, options):
    """Liger's kernels take [tokens, vocabulary] logits only."""
    if prediction.ndim != 2 or options.get("axis", -1) % 2 != 1:
        raise NotOffered("Liger-Kernel takes logits of shape [tokens, vocabulary], the classes last")


def interpreter_scales(dtype, options, cotangent):
    """Triton's interpreter misreads a bfloat16 scalar loaded through a pointer: the backward of
    a reduced loss multiplies by grad_output that way (element_mul_kernel), and a cotangent
    other than 1 gives garbage under the interpreter (measured: 834 times the gradient, 1e37,
    NaN), where float16 and float32 are right; so such a probe is not offered there."""
    if (triton_device.INTERPRETED and dtype == "bfloat16" and options.get("reduction", "none") != "none"
            and np.any(np.asarray(cotangent) != 1)):
        raise NotOffered("not under Triton's interpreter (the CPU): it misreads the bfloat16 grad_output "
                         "a reduced loss's backward loads as a scalar")


def interpreter_offers(options):
    if triton_device.INTERPRETED:
        for name, reason in INTERPRETER_LACKS.items():
            if options.get(name) is not None:
                raise NotOffered(f"not under Triton's interpreter (the CPU): {reason}")


def cross_entropy(z, labels, options):
    weight = options.get("weight")
    if weight is not None:
        weight = torch.as_tensor(weight, dtype=z.dtype, device=z.device)
    ignore_index = options.get("ignore_index")
    loss, *_ = LigerCrossEntropyFunction.apply(
        z, labels, weight, LIGER_DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index,
        float(options.get("z_loss") or 0.0), float(options.get("label_smoothing") or 0.0),
        options.get("reduction", "none"), options.get("softcap"))
    return loss


def linear_cross_entropy(h, labels, options, weight, bias=None):
    ce_weight = options.get("weight")
    if ce_weight is not None:
        ce_weight = torch.as_tensor(ce_weight, dtype=h.dtype, device=h.device)
    ignore_index = options.get("ignore_index")
    out = LigerFusedLinearCrossEntropyFunction.apply(
        h, weight, labels, bias, ce_weight, LIGER_DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index,
        float(options.get("z_loss") or 0.0), float(options.get("label_smoothing") or 0.0),
        options.get("reduction", "none"), options.get("softcap"))
    return out[0] if isinstance(out, tuple) else out  # the loss; then the z-loss and statistics, if asked


LINEAR_TENSORS = ("prediction", "linear_weight", "linear_bias")  # its differentiated inputs


class LigerAdapter(Adapter):
    framework = "liger"
    packages = ("liger-kernel", "triton", "torch")
    capabilities = {
        "sparse_softmax_cross_entropy": Capability(
            cross_entropy, options={"ignore_index", "label_smoothing", "z_loss", "softcap", "weight"}),
        "linear_cross_entropy": Capability(
            linear_cross_entropy,
            options={"ignore_index", "label_smoothing", "z_loss", "softcap", "weight", "linear_bias"}),
    }

    def version(self):
        return f"{metadata.version('liger-kernel')} (triton {metadata.version('triton')}" + (
            ", interpreted)" if triton_device.INTERPRETED else ")")

    devices = staticmethod(triton_device.devices)

    def _function(self, op, labels, options, prediction):
        two_dimensional(prediction, options)
        interpreter_offers(options)
        implementation = self.capability(op).implementation
        return lambda x: implementation(x, labels, options)

    @staticmethod
    def _linear(prediction, labels, options, dtype, device, wrt=None):
        """Fresh leaves (hidden, weight, bias where given; the one named by wrt requires grad),
        the labels, and the loss of them, fn(_)."""
        interpreter_offers(options)
        given = leaves({"prediction": prediction, "linear_weight": options["linear_weight"],
                        "linear_bias": options.get("linear_bias")}, dtype, device, wrt)
        y = to_tensor(labels, dtype, device)
        return given, y, lambda _: linear_cross_entropy(given["prediction"], y, options, given["linear_weight"],
                                                        given.get("linear_bias"))

    def loss(self, op, prediction, labels, options, dtype, device):
        if op == "linear_cross_entropy":
            _, _, fn = self._linear(prediction, labels, options, dtype, device)
            with torch.no_grad():
                return to_result(fn(None))
        fn = self._function(op, to_tensor(labels, dtype, device), options, prediction)
        with torch.no_grad():
            return to_result(fn(to_tensor(prediction, dtype, device)))

    def gradient(self, call: Call) -> Result:
        if call.op == "linear_cross_entropy" and call.wrt in LINEAR_TENSORS:
            given, _, fn = self._linear(call.prediction, call.labels, call.options, call.dtype, call.device, call.wrt)
            return to_result(autograd(fn, given[call.wrt], call.cotangent)[1])
        if call.wrt != "prediction":
            raise NotOffered("integer labels have no gradient")
        fn = self._function(call.op, to_tensor(call.labels, call.dtype, call.device), call.options, call.prediction)
        return to_result(autograd(fn, to_tensor(call.prediction, call.dtype, call.device, True), call.cotangent)[1])

    def backward_probe(self, op, prediction, labels, options, dtype, device, cotangent):
        interpreter_scales(dtype, options, cotangent)
        if op == "linear_cross_entropy":
            given, y, fn = self._linear(prediction, labels, options, dtype, device, "prediction")
            probe = probe_backward(fn, given["prediction"], y, cotangent)
            probe.tensors_after = read_back({name: t for name, t in given.items() if name != "prediction"})
            return probe
        y = to_tensor(labels, dtype, device)
        x = to_tensor(prediction, dtype, device, True)
        return probe_backward(self._function(op, y, options, prediction), x, y, cotangent)

    def kernels(self):
        return {"fused": BenchKernel(
            "fused", "LigerCrossEntropyFunction, reduction none (forward and backward: the gradient is stored into "
                     "the logits, so later calls see other values and do the same work)", _timed, gpu=GPU_PROBES)}


def _timed(problem):
    if triton_device.INTERPRETED or problem.device != "cuda":
        raise NotOffered("Triton's interpreter (the CPU) is a correctness path, not one to time")
    return torch_timed(lambda x, y: cross_entropy(x, y, {"reduction": "none"}), problem)
