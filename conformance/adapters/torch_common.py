"""What every PyTorch-based adapter shares: tensors of a dtype on a device and back, the modes
(eager, and torch.compile where inductor can build), one compiled function per implementation
and options, and autograd's gradients and backward probe. The torch adapter, its
linear_cross_entropy module and plug-ins built on PyTorch use these, so each runs the same way."""
import shutil
from typing import Any, Callable

import numpy as np
import torch

from conformance.adapters import compiles
from conformance.adapters.api import BackwardProbe, Result, as_float, options_key, results_in_modes

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def compile_available() -> bool:
    """Inductor's CPU code needs a C++ compiler; where there is none, PyTorch runs eagerly only."""
    return torch.cuda.is_available() or any(shutil.which(name) for name in ("c++", "g++", "clang++"))


MODES = ("eager", "compile") if compile_available() else ("eager",)
# (function, the options' constants) -> its torch.compile wrapper
_COMPILED: dict[tuple[Callable[..., Any], tuple[tuple[str, Any], ...]], Any] = {}


def lift_recompile_limits():
    """No silent fallback to eager (or, under fullgraph, a raise) after dynamo's recompile limit
    of 8: a training script compiles one configuration, the suite one per dtype and options."""
    for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                 "accumulated_recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 1 << 20)


def _configure_dynamo():
    """The recompile limits lifted; integers (an axis, an ignore_index) specialised, as
    constants of the graph, whatever dynamic= says of the shapes."""
    lift_recompile_limits()
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
    return counted_modes(modes, lambda mode: to_result(run(mode == "compile")))


def counted_modes(modes, compute):
    """results_in_modes, with the compilations each mode's call made counted (compiles.py)."""
    return results_in_modes(modes, lambda mode: compiles.counted(mode, dynamo_compilations, lambda: compute(mode)))


# the compile-time metrics dynamo keeps, one entry per compiled frame and per compiled backward
_COMPILATION_METRICS = ("_compile.compile_inner", "compile_fx.<locals>.bw_compiler")


def dynamo_compilations() -> int:
    metrics = torch._dynamo.utils.compilation_time_metrics
    return sum(len(metrics.get(name, ())) for name in _COMPILATION_METRICS)


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


def leaves(arrays, dtype, device, wrt=None) -> dict:
    """Fresh tensors of the dtype for the named inputs given (None: left out); the one named by
    wrt requires grad, so a gradient is taken with respect to it alone."""
    return {name: to_tensor(array, dtype, device, name == wrt) for name, array in arrays.items() if array is not None}


def read_back(tensors) -> dict:
    """The tensors' values as float64 arrays: what a probe compares with the inputs."""
    return {name: tensor.detach().to(torch.float64).cpu().numpy() for name, tensor in tensors.items()}


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
    read = read_back({"x": x, "y": y})
    return BackwardProbe(to_result(first), to_result(second), read["x"], read["y"])
