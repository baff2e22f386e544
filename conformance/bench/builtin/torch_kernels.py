"""PyTorch's benchmark kernels: what `nox -s benchmark` times for the torch adapter
(conformance/adapters/torch_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from conformance.adapters.api import Adapter
from conformance.adapters.torch_common import autograd, to_tensor
from conformance.bench.contract import (BenchKernel, CompileFailed, GpuProbes, NoDevice, Problem, Timed, first_call,
                                        loss_and_grad, rotating)


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    return {
        "fused": BenchKernel("fused", "F.cross_entropy, eager", lambda p: torch_timed(fused_loss, p),
                             gpu=GPU_PROBES),
        "fused-compile": BenchKernel(
            "fused", "F.cross_entropy under torch.compile(dynamic=False, fullgraph=True)",
            lambda p: torch_timed(fused_loss, p, compile=True), gpu=GPU_PROBES),
        "naive": BenchKernel("naive", "-log(softmax(z)).gather(label), eager", lambda p: torch_timed(naive_loss, p),
                             gpu=GPU_PROBES),
    }


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
