"""JAX's cross-entropy on inputs split across devices (framework id jax-sharded), two modes:
`named_sharding`, optax's `softmax_cross_entropy_with_integer_labels` under jax.jit with the
inputs placed by NamedSharding, and `shard_map`, the collectives written by hand in
jax.shard_map (xent_sharded.jax_worker says how each composes the options).

The devices are forced host devices on the CPU (XLA_FLAGS=--xla_force_host_platform_device_count,
which JAX reads once, at import) and the real GPUs on CUDA. The suite's own process may already
have imported JAX, so the computation runs in a worker process of its own, spawned on first use
with the flag set, reused for every check and shut down at exit. A worker that dies or does not
answer in time ends the check with RankFailed; the next check starts a fresh one.

Only split inputs are checked here (a call without a layout is not offered): the computation on
whole inputs is framework jax's. JAX places no array whose split axis its devices do not divide
(IndivisibleError, in device_put and in jit's in_shardings alike), and shard_map's blocks are
equal by definition, so an uneven split is not offered, with that reason.
"""
from __future__ import annotations

import atexit
import importlib.util
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Mapping

import numpy as np

from conformance.adapters.api import (Adapter, Call, Capability, NotOffered, RankFailed, Result, Unavailable,
                                      results_in_modes, selected_modes)
from conformance.sharded.layouts import Layout
from conformance.sharded.rank_adapter import taken_options

_MISSING = [name for name in ("jax", "optax") if importlib.util.find_spec(name) is None]
if _MISSING:  # the suite counts the checks as not installed
    raise Unavailable(f"not installed ({', '.join(_MISSING)}: pip install 'xent-sharded[jax]')")

from xent_sharded import jax_worker  # noqa: E402 - imports no JAX until the worker runs it

OP = "sparse_softmax_cross_entropy"
OPTIONS = ("ignore_index", "weight", "label_smoothing")
MODES = ("named_sharding", "shard_map")
HOST_DEVICES = 4  # forced host devices: enough for the largest layout of the cases
START_TIMEOUT_S = 120.0  # spawning, importing JAX and counting its devices
JOB_TIMEOUT_S = 60.0  # a worker that has not answered by then is killed, and the next check starts a fresh one
CUDA_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin")


def _cuda_plugin_installed() -> bool:
    return any(importlib.util.find_spec(name) is not None for name in CUDA_PLUGINS)


class JaxWorker:
    """One spawned process holding JAX with its devices: started on first use, replaced when it
    dies or hangs."""

    def __init__(self, host_devices: int = HOST_DEVICES, cpu_only: bool | None = None) -> None:
        self.host_devices = host_devices
        self.cpu_only = not _cuda_plugin_installed() if cpu_only is None else cpu_only
        self._executor: ProcessPoolExecutor | None = None
        self._info: dict | None = None

    def info(self) -> dict:
        """{"pid": the worker's process id, "devices": {"cpu": n, "cuda": m}}, starting it if need be."""
        if self._info is None:
            self._executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=jax_worker.initialize,
                                                 initargs=(self.host_devices, self.cpu_only))
            self._info = self._wait(jax_worker.describe, (), START_TIMEOUT_S, "starting")
        return self._info

    def run(self, function: Callable, *args: Any, timeout_s: float = JOB_TIMEOUT_S) -> Any:
        self.info()
        return self._wait(function, args, timeout_s, "computing")

    def _wait(self, function: Callable, args: tuple, timeout_s: float, doing: str) -> Any:
        assert self._executor is not None
        try:
            return self._executor.submit(function, *args).result(timeout=timeout_s)
        except FutureTimeout:
            pid = (self._info or {}).get("pid")
            self.close(kill=True)
            raise RankFailed(f"the JAX worker (pid {pid or 'unknown'}) did not answer within {timeout_s:.0f} s "
                             f"while {doing}; it was killed") from None
        except BrokenProcessPool as exc:
            pid = (self._info or {}).get("pid")
            self.close()
            raise RankFailed(f"the JAX worker (pid {pid or 'unknown'}) died while {doing} ({exc})") from None

    def close(self, kill: bool = False) -> None:
        executor, info = self._executor, self._info
        self._executor = self._info = None
        if executor is None:
            return
        if kill and info:
            try:
                os.kill(info["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        executor.shutdown(wait=not kill, cancel_futures=True)


class JaxShardedAdapter(Adapter):
    framework = "jax-sharded"
    packages = ("jax", "jaxlib", "optax")
    layouts = ("vocab", "batch", "sequence")
    capabilities = {OP: Capability("in the worker: xent_sharded.jax_worker", options=set(OPTIONS), modes=MODES,
                                   layouts=layouts)}

    def __init__(self) -> None:
        self.worker = JaxWorker()
        atexit.register(self.close)

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda") if _cuda_plugin_installed() else ("cpu",)

    def loss(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, layout: Layout | None = None) -> Result:
        answers = self._run("loss", prediction, labels, options, dtype, device, layout, None)
        return results_in_modes(MODES, lambda mode: _result(answers[mode], lambda values: values))

    def gradient(self, call: Call, layout: Layout | None = None) -> Result:
        if call.wrt != "prediction":
            raise NotOffered(f"{self.framework} differentiates the logits only")
        answers = self._run("gradient", call.prediction, call.labels, call.options, call.dtype, call.device, layout,
                            call.cotangent)
        axis = call.options.get("axis", -1) % call.prediction.ndim

        def in_place(values: np.ndarray) -> np.ndarray:  # the classes back on the caller's axis
            return np.moveaxis(values, -1, axis)
        return results_in_modes(MODES, lambda mode: _result(answers[mode], in_place))

    def grad(self, op: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, wrt: str = "prediction", cotangent: np.ndarray | None = None,
             layout: Layout | None = None) -> Result:
        return self.gradient(Call(op, prediction, labels, options, dtype, device, wrt, cotangent), layout)

    def jvp(self, *args: Any, **kwargs: Any) -> Result:
        raise NotOffered(f"{self.framework}: forward mode across devices is not checked yet")

    def backward_probe(self, *args: Any, **kwargs: Any) -> Any:
        raise NotOffered(f"{self.framework}: no backward probe, as framework jax (JAX arrays are immutable; a "
                         f"pullback is a pure function, called again at will)")

    def close(self) -> None:
        self.worker.close()

    def _run(self, kind: str, prediction: np.ndarray, labels: np.ndarray, options: Mapping[str, Any], dtype: str,
             device: str, layout: Layout | None, cotangent: np.ndarray | None) -> dict:
        if layout is None:
            raise NotOffered(f"{self.framework} computes on inputs split across devices only (whole inputs: jax)")
        axis = options.get("axis", -1) % prediction.ndim
        logits = np.moveaxis(np.asarray(prediction, np.float64), axis, -1)  # classes last, as optax takes them
        available = self.worker.info()["devices"].get(device, 0)
        if available < layout.ranks:
            raise NotOffered(f"layout {layout.name} needs {layout.ranks} {device} devices; JAX's worker has "
                             f"{available}")
        split = layout.axis_index(logits.ndim, -1)
        if logits.shape[split] % layout.ranks:
            raise NotOffered(f"JAX shards only an axis its devices divide (NamedSharding raises IndivisibleError, "
                             f"shard_map takes equal blocks): {logits.shape[split]} positions of the {layout.axis} "
                             f"axis on {layout.ranks} devices")
        job = {"kind": kind, "prediction": logits, "labels": np.asarray(labels, np.int64),
               "options": taken_options(options, OPTIONS), "dtype": dtype, "device": device,
               "layout": (layout.axis, layout.ranks), "modes": list(selected_modes(MODES)),
               "cotangent": None if cotangent is None else np.asarray(cotangent, np.float64)}
        return self.worker.run(jax_worker.compute, job)


def _result(answer: dict, placed: Callable[[np.ndarray], np.ndarray]) -> Result:
    """One mode's Result from the worker's answer; a raise of JAX's is raised again here, so
    that results_in_modes records it for that mode."""
    if "raised" in answer:
        raise RuntimeError(answer["raised"])
    per_rank = answer["per_rank"]
    return Result(placed(np.asarray(answer["values"], np.float64)), answer["dtype"], answer["device"],
                  per_rank=None if per_rank is None else [np.asarray(value, np.float64) for value in per_rank])
