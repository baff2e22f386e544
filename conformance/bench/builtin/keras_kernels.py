"""Keras 3's benchmark kernels, on each backend the way Keras runs a training step there (see
conformance/adapters/keras_adapter.py): timed by the backend framework's own builder, so that
keras-jax and jax, keras-torch and torch are measured alike."""
from __future__ import annotations

import contextlib
import importlib
from typing import Any, Callable

from conformance.bench.contract import BenchKernel, GpuProbes, Timed, with_info

# how Keras runs a training step on each backend
STEP_WRAPPERS = {"tensorflow": "tf.function", "jax": "jax.jit", "torch": "eager", "numpy": "plain call"}


def kernels(adapter: Any) -> dict[str, BenchKernel]:
    timed, gpu = bench_backend(adapter)
    backend = importlib.import_module(adapter.keras_backend)
    info = {"framework_version": f"{adapter.keras.__version__} ({adapter.keras_backend} {backend.__version__})",
            "backend": adapter.keras.config.backend()}
    step_wrapper = STEP_WRAPPERS[adapter.keras_backend]

    def kernel(kind, description, loss):
        def build(problem):
            def placed(x, y):
                with _bench_scope(adapter, problem.device):
                    return loss(x, y)

            return timed(placed, problem)

        return with_info(BenchKernel(kind, f"{description}, {step_wrapper}", build, gpu=gpu), info)

    def fused_loss(x, y):
        return adapter.losses.sparse_categorical_crossentropy(y, x, from_logits=True)

    def naive_loss(x, y):
        ops = adapter.keras.ops
        logp = ops.log(ops.softmax(x, axis=-1))
        return -ops.squeeze(ops.take_along_axis(logp, ops.expand_dims(y, -1), axis=-1), -1)

    return {
        "fused": kernel("fused", "keras.losses.sparse_categorical_crossentropy(from_logits=True)", fused_loss),
        "naive": kernel("naive", "-take_along_axis(keras.ops.log(keras.ops.softmax(z)), label)", naive_loss),
    }


def _bench_scope(adapter, device):
    return contextlib.nullcontext() if adapter.keras_backend == "numpy" else adapter._device(device)


def bench_backend(adapter) -> tuple[Callable[..., Timed], GpuProbes | None]:
    """(builder timing loss_fn(logits, labels) the way the backend runs a step, its GPU probes),
    after the backend's settings for timing (before its runtime starts)."""
    backend = adapter.keras_backend
    if backend == "tensorflow":
        from conformance.bench.builtin import tensorflow_kernels
        tensorflow_kernels.prepare_for_benchmarks()
        return tensorflow_kernels.tf_timed, tensorflow_kernels.GPU_PROBES
    if backend == "jax":
        from conformance.bench.builtin import jax_kernels
        jax_kernels.prepare_for_benchmarks()
        return jax_kernels.jax_timed, jax_kernels.GPU_PROBES
    if backend == "torch":
        from conformance.bench.builtin import torch_kernels
        return torch_kernels.torch_timed, torch_kernels.GPU_PROBES
    from conformance.bench.builtin.numpy_kernels import numpy_timed
    return (lambda loss_fn, problem: numpy_timed(loss_fn, problem, who=adapter.framework)), None
