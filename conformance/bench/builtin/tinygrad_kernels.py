"""tinygrad's benchmark kernels: what `nox -s benchmark` times for the tinygrad adapter
(conformance/adapters/tinygrad_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

from tinygrad import TinyJit, dtypes

from conformance.adapters.api import Adapter, NotOffered
from conformance.adapters.tinygrad_adapter import OFFERED_DTYPES, tinygrad_devices, to_tensor
from conformance.bench.contract import BenchKernel, NoDevice, Problem, Timed, plain_timed


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    return {
        "fused": BenchKernel("fused", "Tensor.sparse_categorical_crossentropy, TinyJit",
                             lambda p: tinygrad_timed(fused_loss, p)),
        "naive": BenchKernel("naive", "-log(softmax(z))[label] through a one-hot, TinyJit",
                             lambda p: tinygrad_timed(naive_loss, p)),
    }


def fused_loss(z, y):
    return z.sparse_categorical_crossentropy(y, reduction="none")


def naive_loss(z, y):
    return -(z.softmax(axis=-1).log() * y.one_hot(z.shape[-1])).sum(axis=-1)


def tinygrad_timed(loss_fn, problem: Problem) -> Timed:
    """loss_fn(logits, labels) under TinyJit (its compiled kernels replayed from the third call);
    the gradient through Tensor.gradient."""
    if problem.device not in tinygrad_devices():
        raise NoDevice("tinygrad's default device is not a GPU here")
    if problem.dtype not in OFFERED_DTYPES:
        raise NotOffered(f"tinygrad does not compute {problem.dtype} here")
    fwdbwd = problem.mode == "fwdbwd"

    def evaluate(z, y):
        loss = loss_fn(z, y)
        outputs = (loss, loss.sum().gradient(z)[0]) if fwdbwd else (loss,)
        return tuple(o.realize() for o in outputs)

    jitted = TinyJit(evaluate)
    return plain_timed(problem, lambda: (to_tensor(problem.logits, problem.dtype).realize(),
                                         to_tensor(problem.labels, problem.dtype).realize()),
                       jitted,
                       lambda t: t.cast(dtypes.float64 if t.dtype == dtypes.float64 else dtypes.float32).numpy())
