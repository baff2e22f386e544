"""Paddle's benchmark kernels: what `nox -s benchmark` times for the paddle adapter
(conformance/adapters/paddle_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import paddle
import paddle.nn.functional as F

from conformance.adapters.api import Adapter, NotOffered
from conformance.adapters.paddle_adapter import DTYPES, paddle_devices, to_tensor
from conformance.bench.contract import BenchKernel, NoDevice, Problem, Timed, plain_timed


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    return {
        "fused": BenchKernel("fused", "F.cross_entropy (softmax-with-cross-entropy kernel), dynamic graph",
                             lambda p: paddle_timed(fused_loss, p)),
        "naive": BenchKernel("naive", "-log(F.softmax(z))[label], dynamic graph",
                             lambda p: paddle_timed(naive_loss, p)),
    }


def fused_loss(z, y):
    return F.cross_entropy(z, y, reduction="none")


def naive_loss(z, y):
    return -paddle.take_along_axis(paddle.log(F.softmax(z, axis=-1)), y[:, None], axis=-1)[:, 0]


def paddle_timed(loss_fn, problem: Problem) -> Timed:
    """loss_fn(logits, labels) in dynamic graph mode; its gradient through paddle.grad."""
    if problem.device not in paddle_devices():
        raise NoDevice("Paddle has no GPU here")
    if problem.dtype not in DTYPES.get(problem.device, ()):
        raise NotOffered(f"paddle has no {problem.dtype} kernels on {problem.device}")
    fwdbwd = problem.mode == "fwdbwd"

    def step(z, y):
        if not fwdbwd:
            with paddle.no_grad():
                out = (loss_fn(z, y),)
        else:
            loss = loss_fn(z, y)
            out = (loss.detach(), paddle.grad(paddle.sum(loss), z)[0])
        if problem.device == "cuda":
            paddle.device.synchronize()
        return out

    def inputs():
        return (to_tensor(problem.logits, problem.dtype, problem.device, fwdbwd),
                to_tensor(problem.labels, problem.dtype, problem.device))

    return plain_timed(problem, inputs, step,
                       lambda t: t.astype("float64" if t.dtype == paddle.float64 else "float32").numpy())
