"""The markdown sections of the benchmark report: the header, a ranking per problem, fused
against naive per framework, the reference's own cost and the skips.
"""
import math
from collections import defaultdict

from conformance.bench.records import MODES, by, case_id, framework_rank, is_reference, itemsize, skip_framework


# ---------------------------------------------------------------- formatting

def _num(value, digits=3):
    if value is None or value == "n/a":
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _ms(seconds):
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "nan"
    return f"{seconds * 1e3:.3g}" if seconds < 1 else f"{seconds * 1e3:,.0f}"


def _pct(fraction):
    if fraction is None or isinstance(fraction, str):
        return "n/a"
    return f"{fraction * 100:.2g}%" if fraction < 0.1 else f"{fraction * 100:.0f}%"


def _bytes(n):
    if not isinstance(n, (int, float)):
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _span(values):
    low, high = min(values), max(values)
    return f"{low:.3g}" if high - low < 0.005 * high else f"{low:.3g} to {high:.3g}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


# ---------------------------------------------------------------- sections

COLUMNS = ("Columns: GB/s = the byte model (logits read once + labels + loss; forward+backward adds the gradient "
           "written once) / median; % copy BW = that / the copy bandwidth, the physical limit for a memory-bound "
           "kernel; exp passes (CPU) = median / the time of one float32 exp per logit, the compute roof on a CPU; "
           "peak extra ×E = peak memory above the inputs during one call, outputs included, in multiples of the "
           "logits ({memory}); compile s = tracing/compilation and first call where the implementation compiles; "
           "max abs err = the loss against the float64 reference (and the gradient's). Inputs smaller than the "
           "last-level cache are cycled through copies, so that a call does not find them in the cache.")

def _problem_key(b):
    return (b["device"], b["dtype"], b["C"], b["N"], b["mode"])


def _sorted_problems(groups):
    return sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], list(MODES).index(k[4])))


def ranking_tables(kernels):
    lines = []
    groups = defaultdict(list)
    for b in kernels:
        groups[_problem_key(b)].append(b)
    for key in _sorted_problems(groups):
        device, dtype, c, n, mode = key
        rows = sorted(groups[key], key=lambda b: b["median_s"])
        best = rows[0]["median_s"]
        sample = rows[0]
        notes = []
        if sample.get("inputs_fit_cache"):
            notes.append(f"one copy of the inputs fits in the {_bytes(sample.get('cache_bytes'))} cache: "
                         f"calls cycle through {sample.get('input_copies')} copies")
        cpus = (sample.get("threads") or {}).get("cpus")
        loads = [x for b in rows for x in (b.get("load_1m") or [])]
        if cpus and loads and max(loads) > 1.5 * cpus:
            notes.append(f"machine load up to {max(loads):.1f} on {cpus} cpus while timing: other work shared the CPU")
        title = f"### {device} · {dtype} · N={n:,} × C={c:,} · {MODES[mode]}"
        lines += [title, "", f"logits {_bytes(n * c * itemsize(dtype))}; byte model: {sample.get('byte_model', '')}"
                             + ("" if not notes else "; " + "; ".join(notes)), ""]
        header = ["#", "framework", "implementation", "median ms", "min ms", "IQR ms", "GB/s", "% copy BW"]
        cpu = device == "cpu"
        if cpu:
            header.append("exp passes")
        header += ["peak extra ×E", "compile s", "max abs err", "× best"]
        table = []
        for rank, b in enumerate(rows, 1):
            row = [rank, b["framework"], b["impl"], _ms(b["median_s"]), _ms(b.get("min_s")), _ms(b.get("iqr_s")),
                   _num(b.get("gbps")), _pct(b.get("frac_copy"))]
            if cpu:
                row.append(_num(b.get("exp_passes"), 2))
            err = b.get("max_abs_err_loss")
            if b.get("max_abs_err_grad") is not None:
                err = f"{_num(err, 2)} (grad {_num(b['max_abs_err_grad'], 2)})"
            else:
                err = _num(err, 2)
            row += [_num(b.get("peak_extra_x"), 2), _num(b.get("compile_s"), 2), err,
                    f"{b['median_s'] / best:.2f}"]
            table.append(row)
        lines += _table(header, table) + [""]
    return lines


def speedup_table(kernels):
    """Per framework and problem: naive median / the best fused median."""
    cells = defaultdict(dict)
    columns = set()
    keys = ("framework", "device", "dtype", "C", "N", "mode")
    for (framework, device, dtype, c, n, mode), group in by(kernels, keys).items():
        fused = [b["median_s"] for b in group if b.get("kind") == "fused"]
        naive = [b["median_s"] for b in group if b.get("kind") == "naive"]
        if fused and naive:
            column = (device, dtype, c, n, mode)
            columns.add(column)
            cells[framework][column] = min(naive) / min(fused)
    if not cells:
        return []
    columns = sorted(columns, key=lambda k: (k[0], k[1], list(MODES).index(k[4]), k[2]))
    header = ["framework"] + [f"{'fwd' if m == 'fwd' else 'fwd+bwd'} C={c:,}" + (f" ({d})" if d != "cpu" else "")
                              for d, _, c, _, m in columns]
    rows = []
    for framework in sorted(cells, key=framework_rank):
        row = cells[framework]
        rows.append([framework] + [f"{row[col]:.2f}" if col in row else "" for col in columns])
    return ["## Fused against naive", "",
            "Naive median / best fused median of the same framework (above 1: the fused kernel is faster).", ""] \
        + _table(header, rows) + [""]


def reference_section(references, skips):
    if not references and not any(is_reference(s) for s in skips):
        return []
    lines = ["## The reference's own cost", "",
             "Sparse softmax cross-entropy loss and logit gradient together on [N, C] logits, in one process: "
             "`fast` = the reference's fast tier (float32 logits, as every float32, bfloat16 and float16 check "
             "uses it), `optax` = jax.jit(value_and_grad) of optax's loss on the same float32 logits, "
             "`double-double` = the tier of float64 checks (float64 logits).", ""]
    rows = []
    for b in sorted(references, key=lambda b: (b["N"], b["impl"])):
        rows.append([f"{b['N']:,} × {b['C']:,}", b["impl"], f"{b['median_s']:.3g}", _num(b.get("gelem_per_s"), 3),
                     _bytes(b.get("input_bytes")), _bytes(b.get("peak_extra_bytes")), _num(b.get("peak_extra_x"), 3)])
    if rows:
        lines += _table(["N × C", "method", "median s", "Gelem/s", "input", "peak extra", "peak extra ×input"], rows)
    by_size = defaultdict(dict)
    for b in references:
        by_size[b["N"]][b["impl"]] = b["median_s"]
    ratios = [f"{n:,}: {impls['fast'] / impls['optax']:.2f}" for n, impls in sorted(by_size.items())
              if "fast" in impls and "optax" in impls]
    if ratios:
        lines += ["", "fast / optax median, by N: " + ", ".join(ratios)]
    for s in skips:
        if is_reference(s):
            lines += ["", f"- skipped `{case_id(s)}`: {s['reason']}"]
    return lines + [""]


def skip_section(skips, known=()):
    """Skips counted per framework and reason; `known`: framework ids that test ids may start with."""
    counts = defaultdict(int)
    for s in skips:
        if not is_reference(s):
            counts[(skip_framework(s, known), s["reason"])] += 1
    if not counts:
        return []
    ordered = sorted(counts.items(), key=lambda kv: (framework_rank(kv[0][0]), kv[0][1]))
    rows = [[framework, n, reason] for (framework, reason), n in ordered]
    return ["## Skipped", ""] + _table(["framework", "benchmarks", "reason"], rows) + [""]


def header_section(kernels, machines, references):
    lines = ["# Cross-entropy kernel benchmarks", ""]
    everything = kernels + references
    devices = sorted({(b["device"], b.get("device_name", "")) for b in everything})
    profiles = sorted({b.get("profile") for b in kernels if b.get("profile")})
    lines.append("Sparse softmax cross-entropy, fused kernels against the naive composition (log of softmax, "
                 "then gather), forward and forward+backward (gradient of the summed loss with respect to "
                 "the logits). Median of the timed rounds; compilation and the first call are outside them.")
    lines.append("")
    for device, name in devices:
        copies = sorted({b["copy_gbps"] for b in kernels if b["device"] == device and "copy_gbps" in b})
        exp = sorted({b["N"] * b["C"] / b["exp_pass_s"] / 1e9
                      for b in kernels if b["device"] == device and b.get("exp_pass_s")})
        text = f"- **{device}**: {name}"
        if copies:
            text += f"; copy bandwidth {_span(copies)} GB/s (measured in each of {len(copies)} processes)"
        if exp:
            text += f"; float32 exp {_span(exp)} Gelem/s (NumPy, all cores)"
        lines.append(text)
    versions = {}
    for b in kernels:
        versions.setdefault(b["framework"], b.get("framework_version"))
    if versions:
        lines.append("- versions: " + ", ".join(f"{f} {v}" for f, v in _in_framework_order(versions)))
    threads = {}
    for b in kernels:
        threads.setdefault(b["framework"], b.get("threads") or {})
    if threads:
        def pools(t):
            return ", ".join(f"{k}={v}" for k, v in t.items())
        lines.append("- threads: " + "; ".join(f"{f}: {pools(t)}" for f, t in _in_framework_order(threads)))
    if machines:
        python = {m.get("python_version") for m in machines}
        lines.append(f"- python {', '.join(sorted(p for p in python if p))}; profile {', '.join(profiles) or 'n/a'}")
    loads = [x for b in kernels for x in (b.get("load_1m") or [])]
    if loads:
        lines.append(f"- 1-minute load average while timing: {min(loads):.1f} to {max(loads):.1f} "
                     "(this process included)")
    lines += ["", COLUMNS.format(memory=_memory_methods(kernels)), ""]
    return lines


def _in_framework_order(mapping):
    return sorted(mapping.items(), key=lambda kv: framework_rank(kv[0]))


def _memory_methods(kernels):
    """How peak memory was measured, with the frameworks measured that way."""
    methods = defaultdict(list)
    for b in sorted(kernels, key=lambda b: framework_rank(b["framework"])):
        method = b.get("peak_extra_method") or "n/a"
        if b["framework"] not in methods[method]:
            methods[method].append(b["framework"])
    return "; ".join(f"{', '.join(names)}: {method}" for method, names in methods.items()) or "n/a"
