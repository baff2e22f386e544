"""The kernels the benchmarks time: each framework's fused cross-entropy and the naive
composition (log of softmax, then gather), forward and forward+backward.

`build(...)` returns a `Kernel` whose `call()` runs one evaluation *and waits for it*
(torch.cuda.synchronize, jax.block_until_ready, TensorFlow's sync_devices / .numpy()), after
the compilation and the first call, which are timed apart. Forward+backward returns the
per-sample loss and the gradient of its sum with respect to the logits, through each
framework's autodiff (torch.autograd.grad, never .grad accumulation; jax.value_and_grad;
tf.GradientTape).

A framework is imported only when a kernel of it is built, so one process times one framework
and the others need not be installed.
"""
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from conformance.bench.measure import thread_info
from reference.dtypes import numpy_dtype


class Skip(Exception):
    """The benchmark cannot run here; `code` is the skip reason code."""

    code = "not-offered"


class NotInstalled(Skip):
    code = "not-installed"


class NoDevice(Skip):
    code = "no-device"


class NotOffered(Skip):
    code = "not-offered"


class CompileFailed(Skip):
    code = "compile-failed"


# framework -> impl -> (kind, what is timed)
IMPLS = {
    "numpy": {
        "lse": ("fused", "log-sum-exp form in the input dtype (NumPy has no fused kernel)"),
        "naive": ("naive", "-log(softmax(z))[label], softmax as exp(z - max) / sum"),
    },
    "tensorflow": {
        "fused": ("fused", "tf.nn.sparse_softmax_cross_entropy_with_logits in tf.function"),
        "fused-dense": ("fused", "tf.nn.softmax_cross_entropy_with_logits (one-hot labels given) in tf.function"),
        "fused-xla": ("fused", "tf.nn.sparse_softmax_cross_entropy_with_logits in tf.function(jit_compile=True)"),
        "naive": ("naive", "-tf.gather(log(tf.nn.softmax(z)), label) in tf.function"),
    },
    "torch": {
        "fused": ("fused", "F.cross_entropy, eager"),
        "fused-compile": ("fused", "F.cross_entropy under torch.compile(dynamic=False, fullgraph=True)"),
        "naive": ("naive", "-log(softmax(z)).gather(label), eager"),
    },
    "jax": {
        "fused": ("fused", "optax.softmax_cross_entropy_with_integer_labels, jax.jit"),
        "naive": ("naive", "-take_along_axis(log(jax.nn.softmax(z)), label), jax.jit"),
    },
    "tf_keras": {
        "fused": ("fused", "tf_keras.losses.sparse_categorical_crossentropy(from_logits=True) in tf.function"),
        "naive": ("naive", "-tf.gather(K.log(K.softmax(z)), label) in tf.function"),
    },
}
_KERAS_WRAPPER = {"tensorflow": "tf.function", "jax": "jax.jit", "torch": "eager", "numpy": "plain call"}
for _backend, _wrapper in _KERAS_WRAPPER.items():
    IMPLS["keras-" + _backend] = {
        "fused": ("fused", f"keras.losses.sparse_categorical_crossentropy(from_logits=True), {_wrapper}"),
        "naive": ("naive", f"-take_along_axis(keras.ops.log(keras.ops.softmax(z)), label), {_wrapper}"),
    }
FRAMEWORKS = tuple(IMPLS)
MODES = ("fwd", "fwdbwd")


@dataclass
class Kernel:
    call: Callable[[], Any]  # one synchronised evaluation; returns the outputs
    loss_grad: Callable[[Any], tuple]  # outputs -> (loss ndarray, grad ndarray or None)
    out_device: Callable[[Any], str]  # outputs -> where they were computed: cpu or cuda
    info: dict = field(default_factory=dict)
    compile_s: Optional[float] = None  # tracing / compilation, where there is such a step
    first_call_s: float = 0.0  # the first call, compilation included
    memory_probe: Optional[Callable] = None  # fn -> peak extra bytes (None: not measurable); unset: RSS on CPU
    memory_method: str = ""
    xla_bytes: Optional[int] = None  # XLA's memory_analysis: temp + output bytes


def kind(framework, impl):
    return IMPLS[framework][impl][0]


def frameworks_here():
    """Frameworks a process without XENT_BENCH_FRAMEWORK times: all but the other Keras backends."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return tuple(f for f in FRAMEWORKS if not f.startswith("keras-") or f == "keras-" + backend)


def _rotating(xs, ys):
    """A function giving the next (x, y) copy on each call."""
    state = [0]
    count = len(xs)

    def take():
        i = state[0]
        state[0] = (i + 1) % count
        return xs[i], ys[i]

    return take


def _first_call(kernel_call):
    start = time.perf_counter()
    out = kernel_call()
    return out, time.perf_counter() - start


# ---------------------------------------------------------------- NumPy

def numpy_lse(x, y):
    m = np.max(x, axis=1, keepdims=True)
    s = x - m
    return np.log(np.sum(np.exp(s), axis=1)) - s[np.arange(len(y)), y]


def numpy_naive(x, y):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.log(p)[np.arange(len(y)), y]


def _numpy_kernel(loss_fn, mode, device, dtype, logits, labels, copies, info):
    if device != "cpu":
        raise NoDevice("NumPy runs on the CPU only")
    if mode == "fwdbwd":
        raise NotOffered(f"{info.get('backend') and 'keras-numpy' or 'NumPy'} has no automatic differentiation")
    xs = [logits.astype(numpy_dtype(dtype), copy=True) for _ in range(copies)]
    ys = [labels.copy() for _ in range(copies)]
    take = _rotating(xs, ys)

    def call():
        return (loss_fn(*take()),)

    kernel = Kernel(call, lambda out: (np.asarray(out[0], np.float64), None), lambda out: "cpu",
                    info={"threads": thread_info(), "label_dtype": "int64", **info})
    _, kernel.first_call_s = _first_call(call)
    return kernel


# ---------------------------------------------------------------- TensorFlow (and Keras on it)

def _import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise NotInstalled(f"tensorflow is not installed ({exc})") from None
    threads = int(os.environ.get("XENT_BENCH_THREADS") or 0)
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # the runtime is already up: the recorded values say what it uses
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)  # TF takes the whole GPU otherwise
        except RuntimeError:
            pass  # already initialised
    return tf


def _tf_kernel(loss_fn, mode, device, dtype, logits, labels, copies, info, jit_compile=False, dense=False):
    tf = _import_tf()
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        raise NoDevice("TensorFlow sees no GPU")
    placement = "/GPU:0" if device == "cuda" else "/CPU:0"
    tdtype = getattr(tf, dtype)
    n, c = logits.shape
    with tf.device(placement):
        xs = [tf.identity(tf.cast(tf.constant(logits), tdtype)) for _ in range(copies)]
        if dense:
            ys = [tf.one_hot(tf.constant(labels), c, dtype=tdtype) for _ in range(copies)]
        else:
            ys = [tf.identity(tf.constant(labels, tf.int64)) for _ in range(copies)]
    if mode == "fwd":
        fn = tf.function(lambda x, y: (loss_fn(x, y),), jit_compile=jit_compile)
    else:
        def step(x, y):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_fn(x, y)
            return loss, tape.gradient(loss, x)  # d sum(loss) / dx

        fn = tf.function(step, jit_compile=jit_compile)
    sync_devices = tf.test.experimental.sync_devices if device == "cuda" else None
    take = _rotating(xs, ys)

    def call():
        with tf.device(placement):
            out = fn(*take())
        if sync_devices is not None:
            sync_devices()
        out[0].numpy()  # the loss reaches the host
        return out

    def loss_grad(out):
        values = [tf.cast(t, tf.float32).numpy() if t.dtype != tf.float32 else t.numpy() for t in out]
        return values[0], (values[1] if len(values) > 1 else None)

    def out_device(out):
        return "cuda" if "GPU" in out[-1].device.upper() else "cpu"

    kernel = Kernel(call, loss_grad, out_device, info={
        "threads": {**thread_info(),
                    "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default (all cores)",
                    "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default"},
        "label_dtype": str(ys[0].dtype.name), **info})
    start = time.perf_counter()
    fn.get_concrete_function(xs[0], ys[0])
    trace_s = time.perf_counter() - start
    _, first = _first_call(call)
    kernel.first_call_s = trace_s + first
    kernel.compile_s = trace_s + first  # tracing, graph optimisation (and XLA) happen here
    if device == "cuda":
        kernel.info["device_name"] = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    allocator = "GPU:0" if device == "cuda" else "CPU:0"

    def probe(f):
        """TensorFlow pools its memory (on the CPU too, with oneDNN): the resident set does not
        show it, its allocator's statistics do."""
        try:
            tf.config.experimental.reset_memory_stats(allocator)
            base = tf.config.experimental.get_memory_info(allocator)["current"]
        except (ValueError, tf.errors.OpError):
            return None
        out = f()
        peak = tf.config.experimental.get_memory_info(allocator)["peak"]
        del out
        return max(0, peak - base)

    kernel.memory_probe = probe
    kernel.memory_method = f"tf.config.experimental.get_memory_info('{allocator}') peak"
    return kernel


def _tensorflow(impl, *args):
    tf = _import_tf()
    info = {"framework_version": tf.__version__}
    if impl in ("fused", "fused-xla"):
        def fused(x, y):
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)

        return _tf_kernel(fused, *args, info, jit_compile=impl == "fused-xla")
    if impl == "fused-dense":
        def dense(x, y):
            return tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=x)

        return _tf_kernel(dense, *args, info, dense=True)

    def naive(x, y):
        return -tf.gather(tf.math.log(tf.nn.softmax(x, axis=-1)), y, axis=1, batch_dims=1)

    return _tf_kernel(naive, *args, info)


def _tf_keras(impl, *args):
    tf = _import_tf()
    try:
        import tf_keras
    except ImportError as exc:
        raise NotInstalled(f"tf_keras is not installed ({exc})") from None
    info = {"framework_version": f"{tf_keras.__version__} (tensorflow {tf.__version__})"}
    K = tf_keras.backend
    if impl == "fused":
        def fused(x, y):
            return tf_keras.losses.sparse_categorical_crossentropy(y, x, from_logits=True)

        return _tf_kernel(fused, *args, info)

    def naive(x, y):
        return -tf.gather(K.log(K.softmax(x)), y, axis=1, batch_dims=1)

    return _tf_kernel(naive, *args, info)


# ---------------------------------------------------------------- PyTorch (and Keras on it)

def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise NotInstalled(f"torch is not installed ({exc})") from None
    return torch


def _torch_kernel(loss_fn, mode, device, dtype, logits, labels, copies, info, compile=False, context=None):
    torch = _import_torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise NoDevice("torch sees no CUDA device")
    dev = torch.device(device)
    tdtype = getattr(torch, dtype)
    source = torch.from_numpy(logits)
    xs = [source.to(device=dev, dtype=tdtype, copy=True).requires_grad_(mode == "fwdbwd") for _ in range(copies)]
    ys = [torch.from_numpy(labels).to(device=dev, copy=True) for _ in range(copies)]
    fn = loss_fn
    if compile:
        torch._dynamo.reset()  # a fresh cache per shape and mode: no recompile limit, no dynamic kernel
        fn = torch.compile(loss_fn, dynamic=False, fullgraph=True)
    scope = context or contextlib.nullcontext
    ones = torch.ones(logits.shape[0], dtype=tdtype, device=dev)
    if mode == "fwd":
        def step(x, y):
            with torch.no_grad(), scope():
                return (fn(x, y),)
    else:
        def step(x, y):
            with scope():
                loss = fn(x, y)
            (grad,) = torch.autograd.grad(loss, x, grad_outputs=ones)  # d sum(loss) / dx
            return loss.detach(), grad

    synchronize = torch.cuda.synchronize if device == "cuda" else None
    take = _rotating(xs, ys)

    def call():
        out = step(*take())
        if synchronize is not None:
            synchronize()
        return out

    def loss_grad(out):
        values = [t.detach().to(torch.float32).cpu().numpy() for t in out]
        return values[0], (values[1] if len(values) > 1 else None)

    kernel = Kernel(call, loss_grad, lambda out: out[-1].device.type, info={
        "threads": {**thread_info(), "torch_intra_op": torch.get_num_threads(),
                    "torch_inter_op": torch.get_num_interop_threads()},
        "label_dtype": "int64", **info})
    try:
        _, kernel.first_call_s = _first_call(call)
    except Exception as exc:  # noqa: BLE001 - any compiler failure is reported as a skip
        if not compile:
            raise
        line = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CompileFailed(f"torch.compile failed on this machine: {type(exc).__name__}: {line}") from None
    if compile:
        kernel.compile_s = kernel.first_call_s
    if device == "cuda":
        kernel.info["device_name"] = torch.cuda.get_device_name(dev)

        def probe(f):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            out = f()
            peak = torch.cuda.max_memory_allocated(dev)
            del out
            return peak - base

        kernel.memory_probe = probe
        kernel.memory_method = "torch.cuda.max_memory_allocated"
    return kernel


def _torch(impl, *args):
    torch = _import_torch()
    import torch.nn.functional as F

    info = {"framework_version": torch.__version__}
    if impl in ("fused", "fused-compile"):
        def fused(x, y):
            return F.cross_entropy(x, y, reduction="none")

        return _torch_kernel(fused, *args, info, compile=impl == "fused-compile")

    def naive(x, y):
        return -torch.log(torch.softmax(x, dim=1)).gather(1, y[:, None]).squeeze(1)

    return _torch_kernel(naive, *args, info)


# ---------------------------------------------------------------- JAX (and Keras on it)

def _import_jax():
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX takes 75% of a GPU otherwise
    try:
        import jax
    except ImportError as exc:
        raise NotInstalled(f"jax is not installed ({exc})") from None
    return jax


def _jax_kernel(loss_fn, mode, device, dtype, logits, labels, copies, info):
    jax = _import_jax()
    import jax.numpy as jnp

    if device == "cuda":
        try:
            target = jax.devices("gpu")[0]
        except RuntimeError:
            raise NoDevice("JAX sees no GPU") from None
    else:
        target = jax.devices("cpu")[0]
    label_type = np.int64 if jax.config.jax_enable_x64 else np.int32
    xs = [jax.device_put(logits.astype(numpy_dtype(dtype)), target) for _ in range(copies)]
    ys = [jax.device_put(labels.astype(label_type), target) for _ in range(copies)]
    if mode == "fwd":
        def f(x, y):
            return (loss_fn(x, y),)
    else:
        def total(x, y):
            loss = loss_fn(x, y)
            return jnp.sum(loss), loss

        value_and_grad = jax.value_and_grad(total, has_aux=True)

        def f(x, y):
            (_, loss), grad = value_and_grad(x, y)
            return loss, grad

    start = time.perf_counter()
    compiled = jax.jit(f).lower(xs[0], ys[0]).compile()
    compile_s = time.perf_counter() - start
    take = _rotating(xs, ys)
    block = jax.block_until_ready

    def call():
        return block(compiled(*take()))

    def loss_grad(out):
        values = [np.asarray(a.astype(jnp.float32)) for a in out]
        return values[0], (values[1] if len(values) > 1 else None)

    def out_device(out):
        return "cuda" if next(iter(out[-1].devices())).platform == "gpu" else "cpu"

    kernel = Kernel(call, loss_grad, out_device, compile_s=compile_s, info={
        "threads": {**thread_info(), "xla_cpu": "one thread (--xla_cpu_multi_thread_eigen=false)"
                    if "xla_cpu_multi_thread_eigen=false" in os.environ.get("XLA_FLAGS", "")
                    else "XLA's own pool over all cpus"},
        "label_dtype": np.dtype(label_type).name, **info})
    _, first = _first_call(call)
    kernel.first_call_s = compile_s + first
    try:
        analysis = compiled.memory_analysis()
        kernel.xla_bytes = int(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend offers it
        kernel.xla_bytes = None
    if device == "cuda":
        kernel.info["device_name"] = target.device_kind
    if kernel.xla_bytes is not None:
        # XLA's CPU client reuses buffers that the resident set cannot see; its compiled plan can
        kernel.memory_probe = lambda fn: kernel.xla_bytes
        kernel.memory_method = "XLA memory_analysis of the compiled call (temp + output)"
    return kernel


def _jax(impl, *args):
    jax = _import_jax()
    import jax.numpy as jnp

    try:
        import optax
    except ImportError as exc:
        raise NotInstalled(f"optax is not installed ({exc})") from None
    info = {"framework_version": f"{jax.__version__} (optax {optax.__version__})"}
    if impl == "fused":
        return _jax_kernel(optax.softmax_cross_entropy_with_integer_labels, *args, info)

    def naive(x, y):
        return -jnp.take_along_axis(jnp.log(jax.nn.softmax(x, axis=-1)), y[:, None], axis=-1)[:, 0]

    return _jax_kernel(naive, *args, info)


# ---------------------------------------------------------------- Keras 3, one backend per process

def _keras(backend, impl, mode, device, *args):
    requested = os.environ.get("KERAS_BACKEND", "tensorflow")
    if requested != backend:
        raise NotInstalled(f"keras-{backend} runs in its own process with KERAS_BACKEND={backend}")
    if backend == "jax":
        _import_jax()
    try:
        import keras
    except ImportError as exc:
        raise NotInstalled(f"keras is not installed ({exc})") from None
    if keras.config.backend() != backend:
        raise NotInstalled(f"keras reports backend {keras.config.backend()!r}, not {backend!r}")
    ops = keras.ops
    if backend == "numpy":
        scope = contextlib.nullcontext
    else:
        placement = "gpu:0" if device == "cuda" else "cpu:0"

        def scope():
            return keras.device(placement)

    def fused(x, y):
        with scope():
            return keras.losses.sparse_categorical_crossentropy(y, x, from_logits=True)

    def naive(x, y):
        with scope():
            logp = ops.log(ops.softmax(x, axis=-1))
            return -ops.squeeze(ops.take_along_axis(logp, ops.expand_dims(y, -1), axis=-1), -1)

    loss_fn = fused if impl == "fused" else naive
    version = keras.__version__
    if backend == "tensorflow":
        tf = _import_tf()
        info = {"framework_version": f"{version} (tensorflow {tf.__version__})", "backend": keras.config.backend()}
        return _tf_kernel(loss_fn, mode, device, *args, info)
    if backend == "jax":
        import jax

        info = {"framework_version": f"{version} (jax {jax.__version__})", "backend": keras.config.backend()}
        return _jax_kernel(loss_fn, mode, device, *args, info)
    if backend == "torch":
        torch = _import_torch()
        info = {"framework_version": f"{version} (torch {torch.__version__})", "backend": keras.config.backend()}
        return _torch_kernel(loss_fn, mode, device, *args, info)
    info = {"framework_version": f"{version} (numpy {np.__version__})", "backend": keras.config.backend()}
    return _numpy_kernel(loss_fn, mode, device, *args, info)


# ---------------------------------------------------------------- entry point

def build(framework, impl, mode, device, dtype, logits, labels, copies=1):
    """The Kernel of one implementation, compiled and called once; raises a Skip subclass when
    it cannot run here."""
    if framework not in IMPLS or impl not in IMPLS[framework]:
        raise NotOffered(f"{framework} has no implementation {impl!r}")
    args = (mode, device, dtype, logits, labels, copies)
    if framework == "numpy":
        loss_fn = numpy_lse if impl == "lse" else numpy_naive
        return _numpy_kernel(loss_fn, *args, {"framework_version": np.__version__})
    if framework == "tensorflow":
        return _tensorflow(impl, *args)
    if framework == "tf_keras":
        return _tf_keras(impl, *args)
    if framework == "torch":
        return _torch(impl, *args)
    if framework == "jax":
        return _jax(impl, *args)
    return _keras(framework.removeprefix("keras-"), impl, *args)


def check_device(framework, device):
    """Raise NoDevice / NotInstalled early, before inputs are made, where the answer is cheap."""
    if device == "cpu":
        return
    if framework in ("numpy", "keras-numpy"):
        raise NoDevice(f"{framework} runs on the CPU only")
    if framework in ("torch", "keras-torch"):
        if not _import_torch().cuda.is_available():
            raise NoDevice("torch sees no CUDA device")
    elif framework in ("jax", "keras-jax"):
        jax = _import_jax()
        try:
            jax.devices("gpu")
        except RuntimeError:
            raise NoDevice("JAX sees no GPU") from None
    elif not _import_tf().config.list_physical_devices("GPU"):
        raise NoDevice("TensorFlow sees no GPU")
