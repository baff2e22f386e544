"""MLX's benchmark kernels: what `nox -s benchmark` times for the mlx adapter
(conformance/adapters/mlx_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import mlx.core as mx
import mlx.nn.losses as losses
import numpy as np

from conformance.adapters.api import Adapter
from conformance.adapters.mlx_adapter import _device, mlx_devices, to_array
from conformance.bench.contract import BenchKernel, NoDevice, Problem, Timed, plain_timed


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    return {
        "fused": BenchKernel("fused", "losses.cross_entropy, mx.compile",
                             lambda p: mlx_timed(lambda z, y: losses.cross_entropy(z, y), p)),
        "naive": BenchKernel("naive", "-log(mx.softmax(z))[label], mx.compile",
                             lambda p: mlx_timed(naive_loss, p)),
    }


def naive_loss(z, y):
    return -mx.take_along_axis(mx.log(mx.softmax(z, axis=-1)), y[:, None], axis=-1)[:, 0]


def mlx_timed(loss_fn, problem: Problem) -> Timed:
    """loss_fn(logits, labels) under mx.compile; forward+backward through mx.value_and_grad."""
    if problem.device not in mlx_devices():
        raise NoDevice("MLX has no GPU here")
    if problem.mode == "fwd":
        step = mx.compile(lambda z, y: (loss_fn(z, y),))
    else:
        value_and_grad = mx.value_and_grad(lambda z, y: mx.sum(loss_fn(z, y)))

        def both(z, y):
            return loss_fn(z, y), value_and_grad(z, y)[1]

        step = mx.compile(both)

    def run(z, y):
        with mx.stream(_device(problem.device)):
            out = step(z, y)
            mx.eval(out)
        return out

    return plain_timed(problem, lambda: (to_array(problem.logits, problem.dtype), to_array(problem.labels, "")),
                       run, lambda a: np.asarray(a if a.dtype == mx.float64 else a.astype(mx.float32)))
