"""TensorFlow's benchmark kernels: what `nox -s benchmark` times for the tensorflow adapter
(conformance/adapters/tensorflow_adapter.py), built from that module's conversion, device and
autodiff helpers. Found by Adapter.kernels() through this module's name."""
from __future__ import annotations

import time

from conformance.adapters.native_order import load_triton_first

load_triton_first()  # before TensorFlow's LLVM (native_order.py), as the adapter does
import tensorflow as tf  # noqa: E402

from conformance.adapters.api import Adapter  # noqa: E402
from conformance.adapters.tensorflow_adapter import (DTYPES, softmax_cross_entropy, sparse_softmax_cross_entropy,  # noqa: E402
                                                     tape_grad, tf_device, to_tensor)
from conformance.bench.contract import (BenchKernel, GpuProbes, NoDevice, Problem, Timed, first_call, loss_and_grad,  # noqa: E402
                                        requested_threads, rotating)


def kernels(adapter: Adapter) -> dict[str, BenchKernel]:
    prepare_for_benchmarks()

    def fused(x, y):
        return sparse_softmax_cross_entropy(x, y, {})

    def dense(x, y):
        return softmax_cross_entropy(x, y, {})

    def naive(x, y):
        return -tf.gather(tf.math.log(tf.nn.softmax(x, axis=-1)), y, axis=1, batch_dims=1)

    sparse = "tf.nn.sparse_softmax_cross_entropy_with_logits"
    return {
        "fused": tf_kernel("fused", f"{sparse} in tf.function", fused),
        "fused-dense": tf_kernel("fused", "tf.nn.softmax_cross_entropy_with_logits (one-hot labels given) in "
                                 "tf.function", dense, dense=True),
        "fused-xla": tf_kernel("fused", f"{sparse} in tf.function(jit_compile=True)", fused, jit_compile=True),
        "naive": tf_kernel("naive", "-tf.gather(log(tf.nn.softmax(z)), label) in tf.function", naive),
    }


def prepare_for_benchmarks():
    """Before TensorFlow's runtime starts: the thread cap asked for, and memory growth on
    GPUs (TensorFlow takes the whole GPU otherwise)."""
    threads = requested_threads()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # the runtime is already up: the recorded values say what it uses
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised


def tf_kernel(kind, description, loss_fn, jit_compile=False, dense=False) -> BenchKernel:
    """A BenchKernel timing loss_fn(logits, labels) in tf.function."""
    def build(problem):
        return tf_timed(loss_fn, problem, jit_compile=jit_compile, dense=dense)

    return BenchKernel(kind, description, build, dense_labels=dense, gpu=GPU_PROBES)


def tf_timed(loss_fn, problem: Problem, jit_compile=False, dense=False) -> Timed:
    """loss_fn(logits, labels) in tf.function (jit_compile: XLA); dense: one-hot labels;
    forward+backward through tape_grad."""
    gpus = tf.config.list_physical_devices("GPU")
    if problem.device == "cuda" and not gpus:
        raise NoDevice("TensorFlow sees no GPU")
    n, c = problem.logits.shape
    with tf_device(problem.device):
        # tf.identity: a constant lives on the host until an op places a copy on the device
        xs = [tf.identity(to_tensor(problem.logits, problem.dtype)) for _ in range(problem.copies)]
        if dense:
            ys = [tf.one_hot(to_tensor(problem.labels, problem.dtype), c, dtype=DTYPES[problem.dtype])
                  for _ in range(problem.copies)]
        else:
            ys = [tf.identity(to_tensor(problem.labels, problem.dtype)) for _ in range(problem.copies)]
    if problem.mode == "fwd":
        fn = tf.function(lambda x, y: (loss_fn(x, y),), jit_compile=jit_compile)
    else:
        fn = tf.function(lambda x, y: loss_and_tape_grad(lambda t: loss_fn(t, y), x), jit_compile=jit_compile)
    sync_devices = tf.test.experimental.sync_devices if problem.device == "cuda" else None
    take = rotating(xs, ys)

    def call():
        with tf_device(problem.device):
            out = fn(*take())
        if sync_devices is not None:
            sync_devices()
        out[0].numpy()  # the loss reaches the host
        return out

    def loss_grad(out):
        return loss_and_grad([t.numpy() if t.dtype in (tf.float32, tf.float64) else tf.cast(t, tf.float32).numpy()
                              for t in out])

    timed = Timed(call, loss_grad, lambda out: _placement(out[-1]), info={
        "threads": {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default (all cores)",
                    "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default"},
        "label_dtype": str(ys[0].dtype.name)})
    start = time.perf_counter()
    fn.get_concrete_function(xs[0], ys[0])
    trace_s = time.perf_counter() - start
    _, first = first_call(call)
    timed.first_call_s = trace_s + first
    timed.compile_s = trace_s + first  # tracing, graph optimisation (and XLA) happen here
    if problem.device == "cuda":
        timed.info["device_name"] = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    allocator = "GPU:0" if problem.device == "cuda" else "CPU:0"
    timed.memory_probe = lambda call: _allocator_peak_extra(allocator, call)
    timed.memory_method = f"tf.config.experimental.get_memory_info('{allocator}') peak"
    return timed


def loss_and_tape_grad(fn, x):
    """(fn(x), d sum(fn(x)) / dx): tape_grad returns the sum, so the per-sample loss is kept on the way."""
    kept = []

    def keep(t):
        kept.append(fn(t))
        return kept[-1]

    _, grad = tape_grad(keep, x)
    return kept[-1], grad


def _placement(tensor):
    return "cuda" if "GPU" in tensor.device.upper() else "cpu"


def _allocator_peak_extra(allocator, call):
    """TensorFlow pools its memory (on the CPU too, with oneDNN): the resident set does not
    show it, its allocator's statistics do."""
    try:
        tf.config.experimental.reset_memory_stats(allocator)
        base = tf.config.experimental.get_memory_info(allocator)["current"]
    except (ValueError, tf.errors.OpError):
        return None
    out = call()
    peak = tf.config.experimental.get_memory_info(allocator)["peak"]
    del out
    return max(0, peak - base)


def _gpu_copy(nbytes):
    with tf.device("/GPU:0"):
        src = tf.ones(nbytes // 4)
    negate = tf.function(tf.negative)
    return (lambda: negate(src)), tf.test.experimental.sync_devices


GPU_PROBES = GpuProbes(_gpu_copy, "tf.negative in tf.function (one read, one write)")
