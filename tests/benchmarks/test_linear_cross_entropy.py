"""linear_cross_entropy kernels against the naive composition: time and peak memory.

An LM head's loss is cross_entropy(hidden @ weight.T, labels). The naive composition
materialises the [tokens, vocabulary] logits (and in the backward their gradient); the fused
kernels compute the loss and the gradients with respect to hidden and weight chunk by chunk,
so the point of them is memory first, time second. Each is checked against a float64
reference before it is timed (a wrong kernel is failed, not timed).

    naive           F.linear, then F.cross_entropy
    torch-chunked   F.linear_cross_entropy with LinearCrossEntropyOptions() (the chunked path)
    liger           LigerFusedLinearCrossEntropyFunction (Triton, CUDA only)
    cce             cut_cross_entropy.linear_cross_entropy: impl "cce" on CUDA, "torch_compile" on the CPU

Run it by name (never under xdist); XENT_LINEAR_PROFILE picks the shapes:

    pytest tests/benchmarks/test_linear_cross_entropy.py --benchmark-json results/benchmarks/linear.json
    XENT_LINEAR_PROFILE=llm pytest tests/benchmarks/test_linear_cross_entropy.py   # [8192, 4096] x 128256, CUDA

The mean loss over the tokens (fwd), and that with its gradients (fwdbwd). Peak memory: the
CUDA allocator's high-water mark above what was allocated before the call (outputs included),
or on the CPU the resident set's (conformance.bench.machine.rss_peak_extra).
"""
import math
import os
import time

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from conformance.bench import machine  # noqa: E402

PROFILES = {  # (tokens N, hidden H, vocabulary V, dtype, devices)
    "quick": [(512, 256, 8192, "float32", ("cpu", "cuda"))],
    "llm": [(8192, 4096, 128256, "bfloat16", ("cuda",)), (8192, 4096, 128256, "float32", ("cuda",))],
}
PROFILE = os.environ.get("XENT_LINEAR_PROFILE", "quick")
IMPLEMENTATIONS = ("naive", "torch-chunked", "liger", "cce")
MODES = ("fwd", "fwdbwd")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
EPS = {"float32": 2.0 ** -24, "bfloat16": 2.0 ** -8}


def naive(h, w, y):
    return F.cross_entropy(F.linear(h, w), y)


def torch_chunked(h, w, y):
    if not hasattr(torch.nn, "LinearCrossEntropyOptions"):
        pytest.skip(f"torch {torch.__version__} has no F.linear_cross_entropy")
    return F.linear_cross_entropy(h, w, y, options=torch.nn.LinearCrossEntropyOptions())


def liger(h, w, y):
    if not torch.cuda.is_available():
        pytest.skip("Liger-Kernel's Triton kernels run on CUDA (Triton's interpreter is not a path to time)")
    flce = pytest.importorskip("liger_kernel.ops.fused_linear_cross_entropy")
    return flce.LigerFusedLinearCrossEntropyFunction.apply(h, w, y)[0]


def cce(h, w, y):
    module = pytest.importorskip("cut_cross_entropy")
    impl = "cce" if h.is_cuda else "torch_compile"
    return module.linear_cross_entropy(h, w, y, impl=impl)


FUNCTIONS = {"naive": naive, "torch-chunked": torch_chunked, "liger": liger, "cce": cce}


def cases():
    for n, h, v, dtype, devices in PROFILES[PROFILE]:
        for device in devices:
            for mode in MODES:
                for impl in IMPLEMENTATIONS:
                    yield pytest.param(impl, mode, device, dtype, n, h, v,
                                       id=f"{impl}-{mode}-{device}-{dtype}-N{n}-H{h}-V{v}")


_inputs = {}


def inputs(n, h, v, dtype, device):
    """hidden ~ N(0, 1), weight ~ N(0, 2 / sqrt(H)) (logits of standard deviation about 2), labels
    uniform; rounded to the dtype once, the same values for every implementation."""
    key = (n, h, v, dtype, device)
    if key not in _inputs:
        _inputs.clear()
        generator = torch.Generator(device="cpu").manual_seed(0)
        hidden = torch.randn(n, h, generator=generator).to(DTYPES[dtype])
        weight = (torch.randn(v, h, generator=generator) * (2.0 / math.sqrt(h))).to(DTYPES[dtype])
        labels = torch.randint(0, v, (n,), generator=generator)
        _inputs[key] = {"hidden": hidden.to(device), "weight": weight.to(device), "labels": labels.to(device),
                        "reference": reference_loss(hidden, weight, labels)}
    return _inputs[key]


def reference_loss(hidden, weight, labels, rows=1024):
    """The mean loss in float64 (products of float32 or bfloat16 numbers are exact in float64;
    the sums round at 2^-53, far below the checked dtypes' rounding), and its conditioning:
    the mean over tokens of sum_k |h_k| |w_label,k| + max_v sum_k |h_k| |w_v,k|, the size of the
    logits that a rounding of hidden and weight moves."""
    h64, w64 = hidden.double(), weight.double()
    total, size = 0.0, 0.0
    for start in range(0, h64.shape[0], rows):
        h, y = h64[start:start + rows], labels[start:start + rows]
        z = h @ w64.T
        total += float((torch.logsumexp(z, dim=1) - z.gather(1, y[:, None])[:, 0]).sum())
        size += float((h.abs() @ w64.abs().T).max(dim=1).values.sum() * 2)
    return total / h64.shape[0], size / h64.shape[0]


def peak_extra(call, device):
    if device == "cuda":
        from conformance.bench.builtin.torch_kernels import cuda_peak_extra

        return cuda_peak_extra(call), "torch.cuda.max_memory_allocated"
    return machine.rss_peak_extra(call), "resident-set high-water mark"


@pytest.mark.parametrize("impl, mode, device, dtype, n, h, v", list(cases()))
def test_linear_cross_entropy(impl, mode, device, dtype, n, h, v, benchmark):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    data = inputs(n, h, v, dtype, device)
    function = FUNCTIONS[impl]
    hidden = data["hidden"].clone().requires_grad_(mode == "fwdbwd")
    weight = data["weight"].clone().requires_grad_(mode == "fwdbwd")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def call():
        if mode == "fwd":
            with torch.no_grad():
                out = (function(hidden, weight, data["labels"]),)
        else:
            loss = function(hidden, weight, data["labels"])
            out = (loss.detach(), *torch.autograd.grad(loss, (hidden, weight)))
        sync()
        return out

    start = time.perf_counter()
    first = call()  # compilation (torch_compile, Triton) and autotuning happen here
    first_call_s = time.perf_counter() - start
    expected, size = data["reference"]
    error = abs(float(first[0]) - expected)
    bound = 8 * EPS[dtype] * size  # the inputs' rounding moves the loss by at most eps x size
    if not error <= bound:
        pytest.fail(f"{impl}: mean loss {float(first[0])!r}, reference {expected!r}: error {error:.3g} over the "
                    f"sanity bound {bound:.3g}; not timed", pytrace=False)
    del first
    extra, method = peak_extra(call, device)

    start = time.perf_counter()
    call()
    once = time.perf_counter() - start
    rounds = max(3, min(20, int(2.0 / max(once, 1e-6))))
    benchmark.group = f"{device}|{dtype}|{mode}|N={n}|H={h}|V={v}"
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=1)
    logits_bytes = n * v * torch.finfo(DTYPES[dtype]).bits // 8
    benchmark.extra_info.update({
        "impl": impl, "mode": mode, "device": device, "dtype": dtype, "N": n, "H": h, "V": v,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else machine.cpu_name(),
        "torch": torch.__version__, "first_call_s": first_call_s, "rounds": rounds,
        "loss_error": error, "sanity_bound": bound,
        "peak_extra_bytes": extra if extra is not None else "n/a", "peak_method": method,
        "peak_extra_x_logits": extra / logits_bytes if extra is not None else "n/a",
    })
