"""cut-cross-entropy's linear_cross_entropy (Apple, "Cut Your Losses in Large-Vocabulary Language
Models"): the LM head's loss without materialising the [tokens, vocabulary] logits, its gradient
skipping the softmax entries below filter_eps.

On CUDA the Triton kernels (impl="cce", the default, with its default filter_eps="high", as a
training script calls it); on the CPU impl="torch_compile" (its fallback: e @ c.T and
F.cross_entropy of the float32 logits under one torch.compile), which the library offers where
its kernels do not run (they fail under Triton's interpreter). The version records which.
Options: ignore_index, softcap. The release pinned here has no bias argument, no label
smoothing, no class weights and no z-loss: cases with them are not offered.
"""
from xent_kernels import triton_device  # first: it decides TRITON_INTERPRET before Triton kernels are made

from importlib import metadata

import torch

from conformance.adapters.api import Adapter, Call, Capability, NotOffered, Result, Unavailable
from conformance.adapters.torch_adapter import autograd, probe_backward, to_result, to_tensor
from conformance.adapters.torch_common import leaves, lift_recompile_limits, read_back

try:
    from cut_cross_entropy import linear_cross_entropy as cut_linear_cross_entropy
except ImportError as exc:  # the plug-in's other kernels do not need it: its checks are counted as not installed
    raise Unavailable(f"not installed ({exc})") from None

IMPLEMENTATION = "torch_compile" if triton_device.INTERPRETED else "cce"
CCE_DEFAULT_IGNORE_INDEX = -100
if IMPLEMENTATION == "torch_compile":
    lift_recompile_limits()  # its torch.compile sees every dtype and option of the cases


def linear_cross_entropy(e, labels, options, classifier):
    ignore_index = options.get("ignore_index")
    return cut_linear_cross_entropy(
        e, classifier, labels, ignore_index=CCE_DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index,
        softcap=options.get("softcap"), reduction=options.get("reduction", "none"), impl=IMPLEMENTATION)


class CutCrossEntropyAdapter(Adapter):
    framework = "cce"
    packages = ("cut-cross-entropy", "triton", "torch")
    capabilities = {"linear_cross_entropy": Capability(linear_cross_entropy, options={"ignore_index", "softcap"})}

    def version(self):
        return f"{metadata.version('cut-cross-entropy')} (impl {IMPLEMENTATION})"

    devices = staticmethod(triton_device.devices)

    @staticmethod
    def _leaves(prediction, labels, options, dtype, device, wrt=None):
        """Fresh leaves (hidden states, classifier; the one named by wrt requires grad), the
        labels, and the loss of them, fn(_)."""
        if wrt not in (None, "prediction", "linear_weight"):
            raise NotOffered(f"cut-cross-entropy takes no {wrt}")
        given = leaves({"prediction": prediction, "linear_weight": options["linear_weight"]}, dtype, device, wrt)
        y = to_tensor(labels, dtype, device)
        return given, y, lambda _: linear_cross_entropy(given["prediction"], y, options, given["linear_weight"])

    def loss(self, op, prediction, labels, options, dtype, device):
        self.capability(op)
        _, _, fn = self._leaves(prediction, labels, options, dtype, device)
        with torch.no_grad():
            return to_result(fn(None))

    def gradient(self, call: Call) -> Result:
        self.capability(call.op)
        given, _, fn = self._leaves(call.prediction, call.labels, call.options, call.dtype, call.device, call.wrt)
        return to_result(autograd(fn, given[call.wrt], call.cotangent)[1])

    def backward_probe(self, op, prediction, labels, options, dtype, device, cotangent):
        self.capability(op)
        given, y, fn = self._leaves(prediction, labels, options, dtype, device, "prediction")
        probe = probe_backward(fn, given["prediction"], y, cotangent)
        probe.tensors_after = read_back({"linear_weight": given["linear_weight"]})
        return probe
