"""Fused cross-entropy kernels against the naive composition, beside this machine's limits.

One test per framework x implementation x mode x device x dtype x size. Outside the timed
region: building, compiling, the first call, a correctness check against the float64
reference (a wrong kernel is failed, not timed) and a peak-memory probe. Inside: one
synchronised call per iteration. Everything a reader needs is in extra_info.
"""
import math
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
import pytest

from conformance.bench import kernels as bk
from conformance.bench import measure as bm


@dataclass(frozen=True)
class Case:
    framework: str
    impl: str
    mode: str
    device: str
    dtype: str
    n: int
    c: int

    @property
    def id(self):
        return f"{self.framework}-{self.impl}-{self.mode}-{self.device}-{self.dtype}-N{self.n}-C{self.c}"

    @property
    def group(self):
        return f"{self.device}|{self.dtype}|{self.mode}|N={self.n}|C={self.c}"


def cases(settings):
    frameworks = settings.frameworks or bk.frameworks_here()
    for name in frameworks:
        if name not in bk.IMPLS:
            raise pytest.UsageError(f"unknown framework id {name!r} (known: {', '.join(bk.FRAMEWORKS)})")
    for device in settings.devices:
        for dtype in settings.dtypes:
            for n, c in bm.problem_sizes(settings, device):
                for mode in bk.MODES:
                    for framework in frameworks:
                        for impl in bk.IMPLS[framework]:
                            yield Case(framework, impl, mode, device, dtype, n, c)


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        generated = list(cases(bm.settings_for(metafunc.config)))
        metafunc.parametrize("case", generated, ids=[c.id for c in generated])


_inputs = {}  # one problem's inputs and reference at a time: consecutive tests share them


def problem(n, c, dtype):
    key = (n, c, dtype)
    if key not in _inputs:
        _inputs.clear()
        logits, labels = bm.make_inputs(n, c, dtype)
        _inputs[key] = {"logits": logits, "labels": labels}
    return _inputs[key]


def reference(n, c, dtype):
    entry = problem(n, c, dtype)
    if "loss" not in entry:
        entry["loss"] = bm.reference_loss_chunked(entry["logits"], entry["labels"])
    return entry["loss"]


def _skip(exc):
    pytest.skip(f"[{exc.code}] {exc}")


def test_kernel(case, benchmark, bench_settings, physical_limits):
    benchmark.group = case.group
    dense = case.impl == "fused-dense"
    logits_bytes = case.n * case.c * bm.itemsize(case.dtype)
    try:
        bk.check_device(case.framework, case.device)
        data = problem(case.n, case.c, case.dtype)
        input_bytes = logits_bytes + (logits_bytes if dense else bm.LABEL_BYTES * case.n)
        cache = bm.cpu_cache_bytes() if case.device == "cpu" else bm.gpu_cache_bytes(case.framework)
        copies = bm.rotation_count(input_bytes, cache)
        kernel = bk.build(case.framework, case.impl, case.mode, case.device, case.dtype,
                          data["logits"], data["labels"], copies)
    except bk.Skip as exc:
        _skip(exc)

    # Correct first: a fast wrong kernel is not fast.
    out = kernel.call()
    where = kernel.out_device(out)
    if where != case.device:
        pytest.fail(f"{case.framework} computed on {where}, not {case.device}", pytrace=False)
    loss, grad = kernel.loss_grad(out)
    del out
    expected = reference(case.n, case.c, case.dtype)
    loss_err = bm.max_abs_error(loss, expected)
    bound = bm.sanity_bound(case.dtype, expected)
    grad_err = None if grad is None else bm.grad_error_chunked(data["logits"], data["labels"], grad)
    del loss, grad
    if not loss_err <= bound:
        pytest.fail(f"loss is {loss_err:.3g} from the float64 reference (sanity bound {bound:.3g}): not timed",
                    pytrace=False)
    if grad_err is not None and not grad_err <= bm.SANITY_REL[case.dtype]:
        pytest.fail(f"gradient is {grad_err:.3g} from the float64 reference: not timed", pytrace=False)

    # Peak extra memory of one call, outputs included.
    if kernel.memory_probe is not None:
        extra = kernel.memory_probe(kernel.call)
        method = kernel.memory_method if extra is not None else f"n/a ({kernel.memory_method} unavailable)"
    elif case.device == "cpu":
        extra = bm.rss_peak_extra(kernel.call)
        method = "resident-set high-water mark (malloc_trim, /proc/self/clear_refs)" if extra is not None else "n/a"
    else:
        extra, method = None, "n/a"

    start = time.perf_counter()
    kernel.call()
    rounds, iterations = bm.plan_rounds(time.perf_counter() - start, bench_settings.profile)
    limits = physical_limits.get(case.device, case.framework)
    load_before = os.getloadavg()[0]
    benchmark.pedantic(kernel.call, rounds=rounds, iterations=iterations, warmup_rounds=1)
    load_after = os.getloadavg()[0]

    stats = getattr(benchmark.stats, "stats", None)
    median = stats.median if stats is not None else math.nan
    nbytes = bm.model_bytes(case.n, case.c, case.dtype, case.mode, dense_labels=dense)
    gbps = nbytes / median / 1e9
    info = {
        "framework": case.framework, "impl": case.impl, "kind": bk.kind(case.framework, case.impl),
        "description": bk.IMPLS[case.framework][case.impl][1], "mode": case.mode,
        "device": case.device, "device_name": kernel.info.get("device_name") or bm.cpu_name(),
        "dtype": case.dtype, "N": case.n, "C": case.c, "profile": bench_settings.profile,
        "median_s": median, "iqr_s": stats.iqr if stats is not None else math.nan,
        "rounds": rounds, "iterations": iterations,
        "logits_bytes": logits_bytes, "model_bytes": nbytes,
        "byte_model": ("logits + one-hot labels + loss" if dense else "logits + int64 labels + loss")
                      + (" + gradient" if case.mode == "fwdbwd" else ""),
        "gbps": gbps, "copy_gbps": limits["copy_gbps"], "frac_copy": gbps / limits["copy_gbps"],
        "copy_method": limits["copy_method"],
        "peak_extra_bytes": extra if extra is not None else "n/a",
        "peak_extra_x": extra / logits_bytes if extra is not None else "n/a",
        "peak_extra_method": method,
        "compile_s": kernel.compile_s, "first_call_s": kernel.first_call_s,
        "max_abs_err_loss": loss_err, "max_abs_err_grad": grad_err, "sanity_bound": bound,
        "framework_version": kernel.info.get("framework_version"), "backend": kernel.info.get("backend"),
        "python": platform.python_version(), "numpy": np.__version__,
        "threads": kernel.info.get("threads"), "label_dtype": kernel.info.get("label_dtype"),
        "input_copies": copies, "inputs_fit_cache": input_bytes <= cache, "cache_bytes": cache,
        "latency_bound": bool(median < bm.LATENCY_BOUND_S),
        # the machine's 1-minute load around the timed region (this process included): a shared
        # machine shows here, and multi-threaded pools suffer most from it
        "load_1m": [round(load_before, 2), round(load_after, 2)],
    }
    if kernel.xla_bytes is not None:
        info["xla_temp_output_x"] = kernel.xla_bytes / logits_bytes
    if "exp_gelem_s" in limits:  # the CPU's compute roof: one float32 exp per logit
        info["exp_pass_s"] = case.n * case.c / (limits["exp_gelem_s"] * 1e9)
        info["exp_passes"] = median / info["exp_pass_s"]
        info["exp_method"] = limits["exp_method"]
    benchmark.extra_info.update(info)
