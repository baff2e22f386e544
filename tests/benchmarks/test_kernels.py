"""Fused cross-entropy kernels against the naive composition, beside this machine's limits.

One test per framework x implementation x mode x device x dtype x size, for every kernel an
adapter offers (`Adapter.kernels()`); a framework with none here is one skipped test. Outside
the timed region: building, compiling, the first call, a correctness check against the float64
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
from conformance.bench import machine
from conformance.bench import measure as bm
from conformance.bench.contract import MODES, Problem
from conformance.bench.settings import plan_rounds, problem_sizes, settings_for


@dataclass(frozen=True)
class Case:
    framework: str
    impl: str = ""  # empty: the framework offers nothing here (one skipped or failed test)
    mode: str = ""
    device: str = ""
    dtype: str = ""
    n: int = 0
    c: int = 0

    @property
    def id(self):
        if not self.impl:
            return f"{self.framework}-kernels"
        return f"{self.framework}-{self.impl}-{self.mode}-{self.device}-{self.dtype}-N{self.n}-C{self.c}"

    @property
    def group(self):
        return f"{self.device}|{self.dtype}|{self.mode}|N={self.n}|C={self.c}"


def cases(settings):
    try:
        frameworks = bk.selected_frameworks(settings.frameworks)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    offers = [bk.offer(name) for name in frameworks]
    for device in settings.devices:
        for dtype in settings.dtypes:
            for n, c in problem_sizes(settings, device):
                for mode in MODES:
                    for offer in offers:
                        for impl in offer.kernels:
                            yield Case(offer.framework, impl, mode, device, dtype, n, c)
    for offer in offers:
        if not offer.kernels:
            yield Case(offer.framework)


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        generated = list(cases(settings_for(metafunc.config)))
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
        entry["loss"] = bm.reference_loss_chunked(entry["logits"], entry["labels"], dtype)
    return entry["loss"]


def build(case, offer):
    """(kernel, timed kernel, input copies, input bytes, cache bytes); skips when it cannot run here."""
    if offer.error:
        pytest.fail(offer.error, pytrace=False)
    if offer.skip:
        pytest.skip(offer.skip)
    kernel = offer.kernels[case.impl]
    absent = bk.no_device_reason(offer, case.device)
    if absent:
        pytest.skip(absent)
    data = problem(case.n, case.c, case.dtype)
    logits_bytes = case.n * case.c * bm.itemsize(case.dtype)
    input_bytes = logits_bytes + (logits_bytes if kernel.dense_labels else bm.LABEL_BYTES * case.n)
    cache = machine.cpu_cache_bytes() if case.device == "cpu" else machine.gpu_cache_bytes(kernel.gpu)
    copies = machine.rotation_count(input_bytes, cache)
    try:
        timed = kernel.build(Problem(case.mode, case.device, case.dtype, data["logits"], data["labels"], copies))
    except Exception as exc:  # noqa: BLE001 - a reason code means "cannot run here"; anything else is a bug
        reason = bk.skip_reason(exc)
        if reason is None:
            raise
        pytest.skip(reason)
    return kernel, timed, copies, input_bytes, cache


def check(case, timed, data):
    """(loss error, gradient error or None, sanity bound); fails the test when the kernel is wrong."""
    out = timed.call()
    where = timed.out_device(out)
    if where != case.device:
        pytest.fail(f"{case.framework} computed on {where}, not {case.device}", pytrace=False)
    loss, grad = timed.loss_grad(out)
    del out
    expected = reference(case.n, case.c, case.dtype)
    loss_err = bm.max_abs_error(loss, expected)
    bound = bm.sanity_bound(case.dtype, expected)
    grad_err = None if grad is None else bm.grad_error_chunked(data["logits"], data["labels"], grad, case.dtype)
    del loss, grad
    if not loss_err <= bound:
        pytest.fail(f"loss is {loss_err:.3g} from the float64 reference (sanity bound {bound:.3g}): not timed",
                    pytrace=False)
    if grad_err is not None and not grad_err <= bm.SANITY_REL[case.dtype]:
        pytest.fail(f"gradient is {grad_err:.3g} from the float64 reference: not timed", pytrace=False)
    return loss_err, grad_err, bound


def peak_extra(case, timed):
    """(peak extra bytes of one call, outputs included, or None; how it was measured)."""
    if timed.memory_probe is not None:
        extra = timed.memory_probe(timed.call)
        return extra, timed.memory_method if extra is not None else f"n/a ({timed.memory_method} unavailable)"
    if case.device == "cpu":
        extra = machine.rss_peak_extra(timed.call)
        method = "resident-set high-water mark (malloc_trim, /proc/self/clear_refs)"
        return extra, method if extra is not None else "n/a"
    return None, "n/a"


def test_kernel(case, benchmark, bench_settings, physical_limits, request):
    request.node.user_properties.append(("framework", case.framework))
    benchmark.group = case.group
    offer = bk.offer(case.framework)
    kernel, timed, copies, input_bytes, cache = build(case, offer)

    # Correct first: a fast wrong kernel is not fast.
    loss_err, grad_err, bound = check(case, timed, problem(case.n, case.c, case.dtype))
    extra, method = peak_extra(case, timed)

    start = time.perf_counter()
    timed.call()
    rounds, iterations = plan_rounds(time.perf_counter() - start, bench_settings.profile)
    limits = physical_limits.get(case.device, kernel.gpu)
    load_before = os.getloadavg()[0]
    benchmark.pedantic(timed.call, rounds=rounds, iterations=iterations, warmup_rounds=1)
    load_after = os.getloadavg()[0]

    stats = getattr(benchmark.stats, "stats", None)
    median = stats.median if stats is not None else math.nan
    dense = kernel.dense_labels
    logits_bytes = case.n * case.c * bm.itemsize(case.dtype)
    nbytes = bm.model_bytes(case.n, case.c, case.dtype, case.mode, dense_labels=dense)
    gbps = nbytes / median / 1e9
    info = {
        "framework": case.framework, "impl": case.impl, "kind": kernel.kind,
        "description": kernel.description, "mode": case.mode,
        "device": case.device, "device_name": timed.info.get("device_name") or machine.cpu_name(),
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
        "compile_s": timed.compile_s, "first_call_s": timed.first_call_s,
        "max_abs_err_loss": loss_err, "max_abs_err_grad": grad_err, "sanity_bound": bound,
        "framework_version": timed.info.get("framework_version") or offer.adapter.version(),
        "backend": timed.info.get("backend"),
        "python": platform.python_version(), "numpy": np.__version__,
        "threads": {**machine.thread_info(), **timed.info.get("threads", {})},
        "label_dtype": timed.info.get("label_dtype"),
        "input_copies": copies, "inputs_fit_cache": input_bytes <= cache, "cache_bytes": cache,
        "latency_bound": bool(median < bm.LATENCY_BOUND_S),
        # the machine's 1-minute load around the timed region (this process included): a shared
        # machine shows here, and multi-threaded pools suffer most from it
        "load_1m": [round(load_before, 2), round(load_after, 2)],
    }
    if timed.xla_bytes is not None:
        info["xla_temp_output_x"] = timed.xla_bytes / logits_bytes
    if "exp_gelem_s" in limits:  # the CPU's compute roof: one float32 exp per logit
        info["exp_pass_s"] = case.n * case.c / (limits["exp_gelem_s"] * 1e9)
        info["exp_passes"] = median / info["exp_pass_s"]
        info["exp_method"] = limits["exp_method"]
    benchmark.extra_info.update(info)
