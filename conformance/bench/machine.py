"""This machine: its CPU, caches and threads, its physical limits (copy bandwidth, exp
throughput; a GPU's through the framework's own probes) and peak memory on the CPU.

Nothing here imports a framework: a GPU is measured through the `GpuProbes` its adapter gives.
"""
import ctypes
import gc
import math
import os
import platform
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np


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


def mem_available():
    """MemAvailable from /proc/meminfo, in bytes (None when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            match = re.search(r"MemAvailable:\s+(\d+)\s+kB", f.read())
        return int(match.group(1)) * 1024 if match else None
    except OSError:
        return None


# ---------------------------------------------------------------- a GPU, through its framework

GPU_CACHE_DEFAULT = 50 << 20  # an H100's L2, where the framework cannot tell


def gpu_limits(probes, nbytes=1 << 30, repeats=20):
    """Device-to-device copy bandwidth (2 x bytes / t, the best of `repeats`) with the probes of
    this process's framework; NaN when it offers none."""
    if probes is None:
        return {"copy_gbps": math.nan, "copy_method": "n/a (the framework offers no GPU copy probe)"}
    copy, wait = probes.copy(nbytes)
    seconds = _best_time(lambda: (copy(), wait()), repeats)
    return {"copy_gbps": 2 * nbytes / seconds / 1e9,
            "copy_method": f"{probes.copy_method} on {nbytes >> 20} MiB, 2 x bytes / best of {repeats}"}


def gpu_cache_bytes(probes):
    """The GPU's L2 size where its framework can tell, GPU_CACHE_DEFAULT otherwise."""
    try:
        found = probes.cache_bytes() if probes is not None else None
    except Exception:  # noqa: BLE001 - older framework, no device
        found = None
    return int(found) if found else GPU_CACHE_DEFAULT
