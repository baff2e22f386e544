"""PyTorch's torch.nn.functional losses."""
import numpy as np
import torch
import torch.nn.functional as F

from conformance.adapters.base import Adapter, NotOffered, Result, as_float, move_class_axis

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def torch_devices():
    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def to_tensor(array, dtype, device, requires_grad=False):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return torch.as_tensor(array, dtype=torch.int64, device=device)
    tensor = torch.as_tensor(as_float(array), device=device).to(DTYPES[dtype])
    return tensor.requires_grad_(requires_grad)


def to_result(tensor):
    tensor = tensor.detach()
    return Result(tensor.to(torch.float64).cpu().numpy(), str(tensor.dtype).removeprefix("torch."),
                  tensor.device.type)


def autograd(fn, x):
    """d sum(fn(x)) / dx through torch.autograd; returns (loss, grad)."""
    out = fn(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out, grad


class TorchAdapter(Adapter):
    framework = "torch"
    variants = {
        "sigmoid_cross_entropy": "exact",
        "binary_crossentropy": "torch_clamp_log",
        "softmax_cross_entropy": "exact",
        "sparse_softmax_cross_entropy": "exact",
        "mean_squared_error": "exact",
    }
    offered_options = {
        "sigmoid_cross_entropy": ("pos_weight", "sample_weight"),
        "binary_crossentropy": ("sample_weight",),
        "softmax_cross_entropy": ("label_smoothing", "weight"),
        "sparse_softmax_cross_entropy": ("label_smoothing", "weight", "ignore_index"),
    }

    def version(self):
        return torch.__version__

    def devices(self):
        return torch_devices()

    def _function(self, op, labels, options):
        reduction = options.get("reduction", "none")
        axis = options.get("axis", -1)
        extra = {}
        if options.get("label_smoothing"):
            extra["label_smoothing"] = options["label_smoothing"]
        if options.get("ignore_index") is not None:
            extra["ignore_index"] = options["ignore_index"]

        def sample_weights(x):
            if options.get("sample_weight") is None:
                return {}
            return {"weight": torch.as_tensor(options["sample_weight"], dtype=x.dtype, device=x.device)}

        def class_weights(x):
            if options.get("weight") is None:
                return {}
            return {"weight": torch.as_tensor(options["weight"], dtype=x.dtype, device=x.device)}

        def classes_second(t):
            return t.permute(move_class_axis(t.ndim, axis)) if t.ndim > 1 else t

        def fn(x):
            if op == "sigmoid_cross_entropy":
                pos = options.get("pos_weight")
                pos = None if pos is None else torch.as_tensor(pos, dtype=x.dtype, device=x.device)
                return F.binary_cross_entropy_with_logits(x, labels, reduction=reduction, pos_weight=pos,
                                                          **sample_weights(x))
            if op == "binary_crossentropy":
                return F.binary_cross_entropy(x, labels, reduction=reduction, **sample_weights(x))
            if op == "softmax_cross_entropy":
                return F.cross_entropy(classes_second(x), classes_second(labels), reduction=reduction,
                                       **extra, **class_weights(x))
            if op == "sparse_softmax_cross_entropy":
                return F.cross_entropy(classes_second(x), labels, reduction=reduction, **extra, **class_weights(x))
            if options.get("half"):
                raise NotOffered("torch has no 1/2 (a - y)^2 loss")
            return F.mse_loss(x, labels, reduction=reduction)

        return fn

    def loss(self, op, prediction, labels, options, dtype, device):
        x, y = to_tensor(prediction, dtype, device), to_tensor(labels, dtype, device)
        with torch.no_grad():
            return to_result(self._function(op, y, options)(x))

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction"):
        on_labels = wrt == "labels"
        x, y = to_tensor(prediction, dtype, device, not on_labels), to_tensor(labels, dtype, device, on_labels)
        if on_labels:
            return to_result(autograd(lambda t: self._function(op, t, options)(x), y)[1])
        return to_result(autograd(self._function(op, y, options), x)[1])


ADAPTER = TorchAdapter
