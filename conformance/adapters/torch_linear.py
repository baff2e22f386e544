"""PyTorch's F.linear_cross_entropy: its reference path eagerly and under torch.compile, and
its chunked path (LinearCrossEntropyOptions) under each accumulation policy, as modes of one
check. The chunked path never holds the [N, V] logits: it sums over vocabulary chunks, in an
order and a precision of its own, which is what these modes put to the test.

The hidden states, the weight and the bias are leaves of their own in every mode, so each
gradient comes from the framework's autograd through the path that mode took.
"""
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from conformance.adapters.api import BackwardProbe, NotOffered, Result
from conformance.adapters.torch_common import (MODES, autograd, compiled, counted_modes, leaves, probe_backward,
                                               read_back, to_result, to_tensor)

POLICIES = ("accurate", "balanced", "compact")  # LinearCrossEntropyOptions.acc_policy
AVAILABLE = hasattr(F, "linear_cross_entropy") and hasattr(torch.nn, "LinearCrossEntropyOptions")
LINEAR_MODES = (*MODES, *(f"chunked-{policy}" for policy in POLICIES)) if AVAILABLE else MODES
OPTIONS = {"label_smoothing", "weight", "ignore_index", "linear_bias"}


def linear_cross_entropy(h, labels, options, policy=None):
    """F.linear_cross_entropy of the canonical options (the tensors among them: linear_weight,
    linear_bias, class weight, all of the hidden states' dtype); policy: the chunked path's."""
    chunking = torch.nn.LinearCrossEntropyOptions(acc_policy=policy) if policy else None
    kwargs = {"reduction": options.get("reduction", "none"), "linear_bias": options.get("linear_bias"),
              "label_smoothing": float(options.get("label_smoothing") or 0.0), "options": chunking}
    if options.get("weight") is not None:
        kwargs["weight"] = options["weight"]
    if options.get("ignore_index") is not None:
        kwargs["ignore_index"] = options["ignore_index"]
    return F.linear_cross_entropy(h, options["linear_weight"], labels, **kwargs)


def _leaves(prediction, labels, options, dtype, device, wrt):
    """Fresh tensors for one mode: h, the labels, the options with weight and bias as tensors of
    the dtype (the one named by wrt requires grad), and that leaf."""
    given = leaves({"prediction": prediction, "linear_weight": options["linear_weight"],
                    "linear_bias": options.get("linear_bias")}, dtype, device, wrt)
    h, tensors = given.pop("prediction"), {**options, **given}
    if options.get("weight") is not None:
        tensors["weight"] = torch.as_tensor(np.asarray(options["weight"], np.float64), device=device).to(h.dtype)
    return h, to_tensor(labels, dtype, device), tensors, h if wrt == "prediction" else tensors.get(wrt)


def _run(mode, h, y, tensors):
    if mode == "compile":
        return compiled(linear_cross_entropy, tensors)(h, y)
    with warnings.catch_warnings():  # a configuration the chunked path lacks runs the reference path
        warnings.simplefilter("ignore")
        policy = mode.removeprefix("chunked-") if mode.startswith("chunked-") else None
        return linear_cross_entropy(h, y, tensors, policy)


def loss(prediction, labels, options, dtype, device, modes=LINEAR_MODES) -> Result:
    def one(mode):
        h, y, tensors, _ = _leaves(prediction, labels, options, dtype, device, None)
        with torch.no_grad():
            return to_result(_run(mode, h, y, tensors))
    return counted_modes(modes, one)


def grad(prediction, labels, options, dtype, device, wrt, cotangent=None, modes=LINEAR_MODES) -> Result:
    """d sum(loss) (or the vector-Jacobian product with the cotangent) with respect to the hidden
    states (wrt="prediction"), linear_weight or linear_bias."""
    if wrt not in ("prediction", "linear_weight", "linear_bias"):
        raise NotOffered(f"linear_cross_entropy has no gradient with respect to {wrt}")

    def one(mode):
        h, y, tensors, leaf = _leaves(prediction, labels, options, dtype, device, wrt)
        return to_result(autograd(lambda _: _run(mode, h, y, tensors), leaf, cotangent)[1])
    return counted_modes(modes, one)


def probe(prediction, labels, options, dtype, device, cotangent) -> BackwardProbe:
    """One forward of the reference path, two backward passes with the graph kept, and every
    input tensor read back (the hidden states' gradient is the product compared)."""
    h, y, tensors, _ = _leaves(prediction, labels, options, dtype, device, "prediction")
    probe = probe_backward(lambda _: linear_cross_entropy(h, y, tensors), h, y, cotangent)
    probe.tensors_after = read_back({name: tensors[name] for name in ("linear_weight", "linear_bias")
                                     if options.get(name) is not None})
    return probe
