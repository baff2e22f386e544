"""What the benchmarks measure besides the kernels: sizes, inputs, the float64 reference in
row chunks, the byte model, the physical limits of this machine and peak memory.

Nothing here imports a framework at module level: the benchmark processes import only the
framework they time (one per process, Keras 3 with its backend fixed before import).
"""
import ctypes
import gc
import math
import os
import platform
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from reference.ops.softmax import sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_grad
from reference.dtypes import numpy_dtype

CLASS_COUNTS = (2, 10, 1000, 32000, 128256)  # 128256: Llama-3's vocabulary, not a power of two
DEVICES = ("cpu", "cuda")

# Logits elements per problem, per device: N is the power of two nearest to elements / C.
# quick: a few minutes for every framework on a 2-core CPU (inputs stay in the last-level
# cache: the results say so); full: about 1 GiB of float32 logits on the CPU (8192 x 32000,
# 2048 x 128256), 4 GiB on a GPU (8192 x 128256, 32768 x 32000).
PROFILES = {
    "quick": {"cpu": 2**21, "cuda": 2**24},
    "full": {"cpu": 2**28, "cuda": 2**30},
}
# Timed region per benchmark: budget_s of rounds, at least min_rounds, each round at least
# min_round_s long (calls shorter than that are repeated within a round).
TIMING = {
    "quick": {"budget_s": 0.2, "min_rounds": 5, "max_rounds": 50, "min_round_s": 1e-3},
    "full": {"budget_s": 5.0, "min_rounds": 5, "max_rounds": 200, "min_round_s": 1e-3},
}
# Reference cost sweep (C = 128256, float32 logits): the rows of [N, 128256] per profile.
REFERENCE_ROWS = {"quick": (16, 64), "full": (64, 256, 1024, 4096, 8192)}
REFERENCE_CLASSES = 128256

# A sanity gate, not the conformance tolerance (that is the conformance suite, in ULPs): a kernel
# whose loss is further than this from the float64 reference, relative to max(1, |loss|), is
# wrong, and a wrong kernel is not timed.
SANITY_REL = {"float64": 1e-10, "float32": 1e-4, "float16": 8e-3, "bfloat16": 6e-2}
LABEL_BYTES = 8  # the byte model counts int64 labels for every implementation
LATENCY_BOUND_S = 20e-6  # below this a call is dispatch-bound: GB/s means little


# ---------------------------------------------------------------- settings and problem sizes

@dataclass(frozen=True)
class Settings:
    profile: str = "quick"
    frameworks: tuple = ()  # empty: every framework this process can run
    devices: tuple = DEVICES
    dtypes: tuple = ("float32",)
    sizes: tuple = ()  # explicit (N, C) pairs; empty: the profile's
    classes: tuple = CLASS_COUNTS


def parse_sizes(text):
    """'8192x32000,1024x128256' -> ((8192, 32000), (1024, 128256))."""
    sizes = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        match = re.fullmatch(r"(\d+)\s*[xX*]\s*(\d+)", item)
        if not match:
            raise ValueError(f"size {item!r}: expected NxC, e.g. 8192x32000")
        sizes.append((int(match.group(1)), int(match.group(2))))
    return tuple(sizes)


def split_list(text):
    return tuple(filter(None, (part.strip() for part in (text or "").split(","))))


def settings_from(profile=None, frameworks=None, devices=None, dtypes=None, sizes=None, classes=None):
    """Settings from options, falling back to the XENT_BENCH_* environment variables."""
    env = os.environ
    profile = profile or env.get("XENT_BENCH_PROFILE") or "quick"
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    devices = split_list(devices or env.get("XENT_BENCH_DEVICES")) or DEVICES
    for device in devices:
        if device not in DEVICES:
            raise ValueError(f"device {device!r}: expected cpu or cuda")
    classes = tuple(int(c) for c in split_list(classes or env.get("XENT_BENCH_CLASSES"))) or CLASS_COUNTS
    return Settings(
        profile=profile,
        frameworks=split_list(frameworks or env.get("XENT_BENCH_FRAMEWORK")),
        devices=devices,
        dtypes=split_list(dtypes or env.get("XENT_BENCH_DTYPES")) or ("float32",),
        sizes=parse_sizes(sizes or env.get("XENT_BENCH_SIZES")),
        classes=classes,
    )


def settings_for(config):
    """Settings of a pytest run: its --bench-* options (present when tests/benchmarks/conftest.py
    was an initial conftest), else the XENT_BENCH_* variables."""
    def option(name):
        try:
            return config.getoption(name)
        except ValueError:
            return None

    try:
        return settings_from(*(option("bench_" + k) for k in
                               ("profile", "framework", "devices", "dtypes", "sizes", "classes")))
    except ValueError as exc:
        import pytest

        raise pytest.UsageError(str(exc)) from None


def problem_sizes(settings, device):
    """(N, C) pairs for a device: the explicit sizes, or the profile's one per class count."""
    if settings.sizes:
        return settings.sizes
    elements = PROFILES[settings.profile][device]
    return tuple((2 ** max(0, round(math.log2(elements / c))), c) for c in settings.classes)


def itemsize(dtype):
    return numpy_dtype(dtype).itemsize


# ---------------------------------------------------------------- inputs and the reference

def make_inputs(n, c, dtype, seed=0):
    """Logits ~ 0.5 N(0, 1) (naive log(softmax) stays finite) already rounded to `dtype` but held
    as float32 (or float64), and int64 labels: every framework and the reference see the same values."""
    rng = np.random.default_rng([seed, n, c])
    holder = np.float64 if dtype == "float64" else np.float32
    logits = rng.standard_normal((n, c), dtype=np.float32)
    logits *= 0.5
    if dtype in ("bfloat16", "float16"):
        logits = logits.astype(numpy_dtype(dtype)).astype(np.float32)
    labels = rng.integers(0, c, size=n, dtype=np.int64)
    return logits.astype(holder, copy=False), labels


CHUNK_BYTES = 16 << 20  # below glibc's largest mmap threshold (32 MiB): blocks are reused, not faulted in


def chunk_rows(c, chunk_bytes=CHUNK_BYTES):
    """Rows per chunk so that one float64 [rows, C] temporary is about chunk_bytes."""
    return max(1, chunk_bytes // (8 * c))


def reference_loss_chunked(logits, labels, chunk_bytes=CHUNK_BYTES):
    """reference.ops.softmax.sparse_softmax_cross_entropy evaluated over blocks of rows.

    The reference is written for accuracy, not memory or speed: it carries every value in
    double-double, and on float32 logits its float64 temporaries peak at about 55x the input
    bytes beyond the input (measured by tests/benchmarks/test_reference_cost.py; the number
    follows the reference). At [8192, 128256] that is some 215 GB: it does not fit in 24 GiB.
    Each row is reduced on its own, so row blocks give the same values, with a peak of about
    25 x chunk_bytes.
    """
    n, c = logits.shape
    rows = chunk_rows(c, chunk_bytes)
    out = np.empty(n, np.float64)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        out[start:stop] = sparse_softmax_cross_entropy(logits[start:stop], labels[start:stop])
    return out


def grad_error_chunked(logits, labels, grad, chunk_bytes=CHUNK_BYTES):
    """max |grad - reference.ops.softmax.sparse_softmax_cross_entropy_grad|, a block of rows at a time."""
    n, c = logits.shape
    rows = chunk_rows(c, chunk_bytes)
    worst = 0.0
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        diff = sparse_softmax_cross_entropy_grad(logits[start:stop], labels[start:stop])
        diff -= grad[start:stop]
        err = float(np.max(np.abs(diff)))
        if math.isnan(err):
            return math.nan
        worst = max(worst, err)
    return worst


def max_abs_error(actual, expected):
    actual = np.asarray(actual, np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"loss has shape {actual.shape}, expected {expected.shape}")
    diff = np.abs(actual - expected)
    return math.nan if np.isnan(diff).any() else float(diff.max())


def sanity_bound(dtype, expected):
    return SANITY_REL[dtype] * max(1.0, float(np.max(np.abs(expected))))


# ---------------------------------------------------------------- the byte model

def model_bytes(n, c, dtype, mode, dense_labels=False):
    """Minimal traffic of the problem, the same for every implementation of it.

    forward: the logits read once (E = N*C*itemsize), the labels (int64; dense labels: E) and
    the loss written (N*itemsize). forward+backward: that and the gradient written once (E),
    which needs the row kept on chip between log-sum-exp and gradient.
    """
    e = n * c * itemsize(dtype)
    labels = e if dense_labels else LABEL_BYTES * n
    total = e + labels + n * itemsize(dtype)
    return total + e if mode == "fwdbwd" else total


# ---------------------------------------------------------------- this machine

@lru_cache(maxsize=None)
def cpu_name():
    try:
        text = open("/proc/cpuinfo").read()
        match = re.search(r"model name\s*:\s*(.+)", text)
        name = match.group(1).strip() if match else platform.processor()
    except OSError:
        name = platform.processor() or platform.machine()
    return f"{name} ({cpu_count()} cores)"


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@lru_cache(maxsize=None)
def cpu_cache_bytes():
    """The largest CPU cache (the last level), from sysfs; 32 MiB when unknown."""
    sizes = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            text = open(os.path.join(base, entry, "size")).read().strip()
            match = re.fullmatch(r"(\d+)([KMG]?)", text)
            if match:
                sizes.append(int(match.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match.group(2)])
    except OSError:
        pass
    return max(sizes) if sizes else 32 << 20


def thread_info():
    """Threads this process may use; frameworks add their own pool sizes."""
    info = {"cpus": cpu_count()}
    for name in ("XENT_BENCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        if os.environ.get(name):
            info[name] = os.environ[name]
    return info


def rotation_count(input_bytes, cache_bytes, most=8):
    """How many copies of the inputs to cycle through so that a call does not find its inputs
    still in the cache from the previous call (2x the cache, at most `most` copies)."""
    if input_bytes <= 0 or input_bytes >= 2 * cache_bytes:
        return 1
    return int(min(most, math.ceil(2 * cache_bytes / input_bytes)))


def _threaded(fn, arrays, threads):
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, *arrays))


def _best_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_limits(nbytes=256 << 20, repeats=15):
    """Copy bandwidth (2 x bytes / t: read and write) and float32 exp throughput of this CPU,
    NumPy over every core (it releases the GIL), on an array larger than the last-level cache.
    A limit is what the machine can do: the best of `repeats`, not their median."""
    threads = int(os.environ.get("XENT_BENCH_THREADS") or cpu_count())
    src = np.full(nbytes // 4, 0.25, np.float32)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts if p.size]
    slices_src = [src[a:b] for a, b in bounds]
    slices_dst = [dst[a:b] for a, b in bounds]
    with ThreadPoolExecutor(len(bounds)) as pool:
        def copy():
            list(pool.map(np.copyto, slices_dst, slices_src))

        def exp():
            list(pool.map(lambda d, s: np.exp(s, out=d), slices_dst, slices_src))

        copy_s = _best_time(copy, repeats)
        exp_s = _best_time(exp, repeats)
    single_s = _best_time(lambda: np.copyto(dst, src), repeats)
    return {
        "copy_gbps": 2 * nbytes / min(copy_s, single_s) / 1e9,
        "copy_method": f"numpy copyto of {nbytes >> 20} MiB float32 on {len(bounds)} threads "
                       f"(best of threaded and single), 2 x bytes / best of {repeats}",
        "exp_gelem_s": src.size / exp_s / 1e9,
        "exp_method": f"numpy float32 exp over {src.size} elements on {len(bounds)} threads, best of {repeats}",
    }


# ---------------------------------------------------------------- peak memory on the CPU

_STATUS = re.compile(r"^(VmRSS|VmHWM):\s+(\d+)\s+kB", re.M)


def _rss():
    with open("/proc/self/status") as f:
        values = dict((k, int(v) * 1024) for k, v in _STATUS.findall(f.read()))
    return values["VmRSS"], values["VmHWM"]


@lru_cache(maxsize=None)
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@lru_cache(maxsize=None)
def rss_probe_available():
    """Linux resets the resident high-water mark on writing 5 to /proc/self/clear_refs (4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _rss()
        return _libc() is not None
    except (OSError, KeyError):
        return False


def rss_peak_extra(fn):
    """Bytes the process's resident set grew to above its level before fn(), while fn's result
    was alive: glibc's free memory is returned first (malloc_trim), the high-water mark reset,
    then fn() runs once. Counts everything the call touched (outputs included) in every
    framework's allocator that sits on malloc; None where the probe is not available."""
    if not rss_probe_available():
        return None
    gc.collect()
    _libc().malloc_trim(0)
    base, _ = _rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    result = fn()
    _, peak = _rss()
    del result
    return max(0, peak - base)


# ---------------------------------------------------------------- rounds

def plan_rounds(call_s, profile):
    """(rounds, iterations) for benchmark.pedantic from one timed call."""
    t = TIMING[profile]
    iterations = max(1, math.ceil(t["min_round_s"] / max(call_s, 1e-9)))
    round_s = call_s * iterations
    rounds = int(min(t["max_rounds"], max(t["min_rounds"], t["budget_s"] // max(round_s, 1e-9))))
    return rounds, iterations


def mem_available():
    """MemAvailable from /proc/meminfo, in bytes (None when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            match = re.search(r"MemAvailable:\s+(\d+)\s+kB", f.read())
        return int(match.group(1)) * 1024 if match else None
    except OSError:
        return None


def gpu_cache_bytes(framework):
    """The GPU's L2 size where torch can tell (50 MB, an H100's, otherwise)."""
    if "torch" in framework:
        try:
            import torch

            return int(torch.cuda.get_device_properties(0).L2_cache_size)
        except Exception:  # noqa: BLE001 - older torch, no device
            pass
    return 50 << 20
