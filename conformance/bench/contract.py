"""What an adapter gives the benchmarks: the records behind `Adapter.kernels()`.

`kernels()` maps an implementation name ("fused", "naive", "fused-xla", ...) to a
`BenchKernel`. The benchmarks call `build(problem)` for every mode, device, dtype and size
they time; it returns a `Timed` whose `call()` runs one evaluation *and waits for it*, after
the compilation and the first call (timed apart). Forward+backward returns the per-sample
loss and the gradient of its sum with respect to the logits, through the framework's own
autodiff. `build` raises `NoDevice`, `CompileFailed`, `conformance.adapters.NotOffered` or
`conformance.adapters.Unavailable` when the kernel cannot run here: the benchmark is then
skipped with that reason code.

Nothing here imports a framework: each adapter module builds its kernels with its own.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

MODES = ("fwd", "fwdbwd")  # the per-sample loss; that and d sum(loss) / d logits
KINDS = ("fused", "naive")


class NoDevice(Exception):
    """The framework sees no such device on this machine."""

    code = "no-device"


class CompileFailed(Exception):
    """A compiler (torch.compile, XLA, ...) failed here; the message says how."""

    code = "compile-failed"


@dataclass(frozen=True)
class Problem:
    """One benchmark's inputs, the same values for every framework."""

    mode: str  # fwd or fwdbwd
    device: str  # cpu or cuda
    dtype: str  # float32, bfloat16, float16, float64
    logits: np.ndarray  # [N, C], already rounded to dtype, held as float32 (float64 for float64)
    labels: np.ndarray  # [N] int64
    copies: int = 1  # input copies a call cycles through, so that it does not find them in a cache


@dataclass
class Timed:
    """A built kernel: compiled, called once, ready to be timed."""

    call: Callable[[], Any]  # one synchronised evaluation; returns the outputs
    loss_grad: Callable[[Any], tuple]  # outputs -> (loss ndarray, grad ndarray or None)
    out_device: Callable[[Any], str]  # outputs -> where they were computed: cpu or cuda
    info: dict = field(default_factory=dict)  # threads (the framework's pools), label_dtype, device_name, ...
    compile_s: Optional[float] = None  # tracing / compilation, where there is such a step
    first_call_s: float = 0.0  # the first call, compilation included
    memory_probe: Optional[Callable] = None  # call -> peak extra bytes (None: not measurable); unset: RSS on CPU
    memory_method: str = ""
    xla_bytes: Optional[int] = None  # XLA's memory_analysis: temp + output bytes


@dataclass(frozen=True)
class GpuProbes:
    """How a framework measures its GPU: a device-to-device copy, and the L2 cache size."""

    copy: Callable[[int], tuple[Callable[[], Any], Callable[[], Any]]]  # nbytes -> (one copy, wait for it)
    copy_method: str
    cache_bytes: Callable[[], Optional[int]] = lambda: None  # None: unknown


@dataclass(frozen=True)
class BenchKernel:
    """One implementation an adapter offers for timing."""

    kind: str  # fused or naive: "fused against naive" compares them per framework
    description: str  # what is timed, in a line
    build: Callable[[Problem], Timed]
    dense_labels: bool = False  # takes one-hot labels: the byte model counts them as E, not 8N
    gpu: Optional[GpuProbes] = None  # the framework's GPU probes (the copy-bandwidth limit)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")


# ---------------------------------------------------------------- helpers for the builders

def rotating(xs: Sequence, ys: Sequence) -> Callable[[], tuple]:
    """A function giving the next (x, y) copy on each call."""
    state = [0]
    count = len(xs)

    def take():
        i = state[0]
        state[0] = (i + 1) % count
        return xs[i], ys[i]

    return take


def first_call(call: Callable[[], Any]) -> tuple[Any, float]:
    """(outputs, seconds) of the first call: compilation happens here for lazy compilers."""
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def loss_and_grad(values: Sequence[np.ndarray]) -> tuple:
    """(loss, gradient or None) from a kernel's outputs as NumPy arrays, `Timed.loss_grad`'s
    answer. Builders widen outputs narrower than float32 to it and keep float64 as it is: the
    float64 sanity gate would otherwise see float32 rounding."""
    return values[0], (values[1] if len(values) > 1 else None)


def requested_threads() -> int:
    """The intra-op thread cap asked for (`--threads`; 0: the frameworks' own defaults)."""
    return int(os.environ.get("XENT_BENCH_THREADS") or 0)


def with_info(kernel: BenchKernel, info: dict) -> BenchKernel:
    """The same kernel, its Timed.info completed with `info` (a wrapper's version, its backend)."""
    def build(problem):
        timed = kernel.build(problem)
        timed.info.update(info)
        return timed

    return replace(kernel, build=build)


def plain_timed(problem: Problem, inputs: Callable[[], tuple], step: Callable[..., tuple],
                to_numpy: Callable[[Any], np.ndarray], info: dict | None = None) -> Timed:
    """A Timed for a framework whose call needs no compile step of its own: `inputs()` makes
    one (logits, labels) copy, `step(x, y)` runs one evaluation to completion and returns its
    outputs (loss, and the gradient in fwdbwd mode), `to_numpy` reads one output back."""
    copies = [inputs() for _ in range(problem.copies)]
    take = rotating([c[0] for c in copies], [c[1] for c in copies])

    def call():
        return step(*take())

    def read(out):
        return loss_and_grad([to_numpy(o) for o in out])

    timed = Timed(call, read, lambda out: problem.device, info={"label_dtype": "int64", **(info or {})})
    _, timed.first_call_s = first_call(call)
    return timed
