"""PyTorch's torch.nn.functional losses."""
import numpy as np
import torch
import torch.nn.functional as F

from conformance.adapters.api import Adapter, Capability, Result, as_float, move_class_axis

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


class TorchAdapter(Adapter):
    framework = "torch"
    packages = ("torch",)
    capabilities = {
        "sigmoid_cross_entropy": Capability(sigmoid_cross_entropy, options={"pos_weight", "sample_weight"}),
        "binary_crossentropy": Capability(binary_crossentropy, variant="torch_clamp_log", options={"sample_weight"}),
        "softmax_cross_entropy": Capability(softmax_cross_entropy, options={"label_smoothing", "weight"}),
        "sparse_softmax_cross_entropy": Capability(sparse_softmax_cross_entropy,
                                                   options={"label_smoothing", "weight", "ignore_index"}),
        "mean_squared_error": Capability(mean_squared_error),
    }

    def version(self):
        return torch.__version__

    def devices(self):
        return torch_devices()

    def _function(self, op, labels, options):
        implementation = self.capability(op).implementation
        return lambda x: implementation(x, labels, options)

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

