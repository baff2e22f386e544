"""PyTorch's torch.nn.functional losses, run eagerly and under torch.compile (inductor).

Inductor generates its own kernels (C++ on the CPU, Triton on CUDA) for the whole loss, so
the compiled loss and its compiled backward are checked as a mode of their own: a check passes
only when both modes do. One compiled function per implementation and options, with shapes
dynamic and the recompile limits lifted (dynamo otherwise falls back to eager after eight
recompiles, silently); each new option value or dtype is one compilation.
"""
import shutil

import numpy as np
import torch
import torch.nn.functional as F

from conformance.adapters.api import (Adapter, BackwardProbe, Capability, Result, as_float, elementwise_reduce,
                                      move_class_axis, options_key, results_in_modes)
from conformance.bench.contract import (BenchKernel, CompileFailed, GpuProbes, NoDevice, Problem, Timed, first_call,
                                        loss_and_grad, rotating)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def compile_available() -> bool:
    """Inductor's CPU code needs a C++ compiler; where there is none, PyTorch runs eagerly only."""
    return torch.cuda.is_available() or any(shutil.which(name) for name in ("c++", "g++", "clang++"))


MODES = ("eager", "compile") if compile_available() else ("eager",)
_COMPILED = {}  # (function, the options' constants) -> its torch.compile wrapper


def _configure_dynamo():
    """No silent fallback to eager after a recompile limit; integers (an axis, an ignore_index)
    specialised, as constants of the graph, whatever dynamic= says of the shapes."""
    for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                 "accumulated_recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 1 << 20)
    torch._dynamo.config.specialize_int = True


def compiled(function, options):
    """function(*tensors, options) under torch.compile(fullgraph=True, dynamic=True), made once
    per implementation and options: the options' numbers and strings are constants of the graph
    (as in a training script; dynamic=True would otherwise trace an axis as a symbol), their
    arrays inputs, the shapes dynamic. fullgraph: a graph break raises instead of running part
    of the loss eagerly."""
    constants = {name: value for name, value in options.items() if not isinstance(value, torch.Tensor)}
    key = (function, options_key(constants))
    if key not in _COMPILED:
        _configure_dynamo()

        def with_options(*tensors_then_arrays):
            *tensors, arrays = tensors_then_arrays
            return function(*tensors, {**constants, **arrays})
        _COMPILED[key] = torch.compile(with_options, fullgraph=True, dynamic=True)
    graph = _COMPILED[key]
    arrays = {name: value for name, value in options.items() if isinstance(value, torch.Tensor)}
    return lambda *tensors: graph(*tensors, arrays)


def option_tensors(options, device):
    """The options with their arrays (weights) as float64 tensors on the device: inputs of the
    compiled graph, not constants baked into it (each function casts them to the logits' dtype)."""
    return {name: torch.as_tensor(value, dtype=torch.float64, device=device) if isinstance(value, (np.ndarray, list))
            else value for name, value in options.items()}


def in_modes(run, modes=MODES):
    """run(compile: bool) -> a tensor, for each mode; the eager Result first, the others attached."""
    return results_in_modes(modes, lambda mode: to_result(run(mode == "compile")))


_FORWARD_DERIVATIVES = {}


def forward_derivative(implementation):
    """(x, v, labels, options) -> d implementation(x, labels, options) along v, through
    torch.func.jvp: one function, so that torch.compile traces the forward mode whole."""
    if implementation not in _FORWARD_DERIVATIVES:
        def along(x, v, labels, options):
            return torch.func.jvp(lambda t: implementation(t, labels, options), (x,), (v,))[1]
        _FORWARD_DERIVATIVES[implementation] = along
    return _FORWARD_DERIVATIVES[implementation]


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


def autograd(fn, x, cotangent=None):
    """d sum(fn(x)) / dx through torch.autograd, or the vector-Jacobian product with a
    cotangent of fn(x)'s shape; returns (loss, grad)."""
    out = fn(x)
    if cotangent is None:
        (grad,) = torch.autograd.grad(out.sum(), x)
    else:
        (grad,) = torch.autograd.grad(out, x, grad_outputs=torch.as_tensor(cotangent, dtype=out.dtype,
                                                                           device=out.device))
    return out, grad


def probe_backward(fn, x, y, cotangent) -> BackwardProbe:
    """fn(x) once, then its vector-Jacobian product with the cotangent twice from the same graph
    (retain_graph), and x and y read back: what a kernel that writes into its inputs or scales
    a saved gradient in place gets wrong. Any PyTorch-based adapter's backward_probe."""
    out = fn(x)
    c = torch.as_tensor(cotangent, dtype=out.dtype, device=out.device)
    (first,) = torch.autograd.grad(out, x, grad_outputs=c, retain_graph=True)
    first = first.clone()  # a kernel may hand back, and later overwrite, a buffer of its own
    (second,) = torch.autograd.grad(out, x, grad_outputs=c)
    return BackwardProbe(to_result(first), to_result(second), x.detach().to(torch.float64).cpu().numpy(),
                         y.detach().to(torch.float64).cpu().numpy())


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
    }

    def version(self):
        return torch.__version__

    def composed(self):
        return TorchComposed()

    def devices(self):
        return torch_devices()

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

    def grad(self, op, prediction, labels, options, dtype, device, wrt="prediction", cotangent=None):
        on_labels = wrt == "labels"

        def run(compile):  # fresh leaves per mode: one mode's graph must not see the other's
            x, y = to_tensor(prediction, dtype, device, not on_labels), to_tensor(labels, dtype, device, on_labels)
            if on_labels:
                return autograd(lambda t: self._function(op, t, options, device, compile)(x), y, cotangent)[1]
            return autograd(self._function(op, y, options, device, compile), x, cotangent)[1]
        return in_modes(run, self.capability(op).modes)

    def backward_probe(self, op, prediction, labels, options, dtype, device, cotangent):
        x, y = to_tensor(prediction, dtype, device, True), to_tensor(labels, dtype, device)
        return probe_backward(self._function(op, y, options, device), x, y, cotangent)

    def kernels(self):
        return {
            "fused": BenchKernel("fused", "F.cross_entropy, eager", lambda p: torch_timed(fused_loss, p),
                                 gpu=GPU_PROBES),
            "fused-compile": BenchKernel(
                "fused", "F.cross_entropy under torch.compile(dynamic=False, fullgraph=True)",
                lambda p: torch_timed(fused_loss, p, compile=True), gpu=GPU_PROBES),
            "naive": BenchKernel("naive", "-log(softmax(z)).gather(label), eager", lambda p: torch_timed(naive_loss, p),
                                 gpu=GPU_PROBES),
        }


class TorchComposed(TorchAdapter):
    composition = "F.log_softmax, then F.nll_loss (dense labels: -(y * F.log_softmax).sum)"
    capabilities = {"sparse_softmax_cross_entropy": Capability(nll_of_log_softmax, modes=MODES),
                    "softmax_cross_entropy": Capability(dense_of_log_softmax, modes=MODES)}

    def composed(self):
        return None


# ---------------------------------------------------------------- benchmark kernels

def fused_loss(x, y):
    return F.cross_entropy(x, y, reduction="none")


def naive_loss(x, y):
    return -torch.log(torch.softmax(x, dim=1)).gather(1, y[:, None]).squeeze(1)


def torch_timed(loss_fn, problem: Problem, compile=False) -> Timed:
    """loss_fn(logits, labels) eager (or under torch.compile), its gradient through `autograd`."""
    device = problem.device
    if device == "cuda" and not torch.cuda.is_available():
        raise NoDevice("torch sees no CUDA device")
    fwdbwd = problem.mode == "fwdbwd"
    # clone: to_tensor shares the NumPy buffer on the CPU, and every copy must be its own memory
    xs = [to_tensor(problem.logits, problem.dtype, device).clone().requires_grad_(fwdbwd)
          for _ in range(problem.copies)]
    ys = [to_tensor(problem.labels, problem.dtype, device).clone() for _ in range(problem.copies)]
    fn = loss_fn
    if compile:
        torch._dynamo.reset()  # a fresh cache per shape and mode: no recompile limit, no dynamic kernel
        fn = torch.compile(loss_fn, dynamic=False, fullgraph=True)

    if fwdbwd:
        def step(x, y):
            loss, grad = autograd(lambda t: fn(t, y), x)  # d sum(loss) / dx, never .grad accumulation
            return loss.detach(), grad
    else:
        def step(x, y):
            with torch.no_grad():
                return (fn(x, y),)

    synchronize = torch.cuda.synchronize if device == "cuda" else None
    take = rotating(xs, ys)

    def call():
        out = step(*take())
        if synchronize is not None:
            synchronize()
        return out

    def loss_grad(out):
        return loss_and_grad([t.detach().to(torch.promote_types(t.dtype, torch.float32)).cpu().numpy() for t in out])

    timed = Timed(call, loss_grad, lambda out: out[-1].device.type, info={
        "threads": {"torch_intra_op": torch.get_num_threads(), "torch_inter_op": torch.get_num_interop_threads()},
        "label_dtype": "int64"})
    try:
        _, timed.first_call_s = first_call(call)
    except Exception as exc:  # noqa: BLE001 - any compiler failure is reported as a skip
        if not compile:
            raise
        line = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CompileFailed(f"torch.compile failed on this machine: {type(exc).__name__}: {line}") from None
    if compile:
        timed.compile_s = timed.first_call_s
    if device == "cuda":
        timed.info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        timed.memory_probe = cuda_peak_extra
        timed.memory_method = "torch.cuda.max_memory_allocated"
    return timed


def cuda_peak_extra(call):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = call()
    peak = torch.cuda.max_memory_allocated()
    del out
    return peak - base


def _cuda_copy(nbytes):
    src = torch.ones(nbytes // 4, device="cuda")
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), torch.cuda.synchronize


GPU_PROBES = GpuProbes(_cuda_copy, "torch copy_", lambda: int(torch.cuda.get_device_properties(0).L2_cache_size))
