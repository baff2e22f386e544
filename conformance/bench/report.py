"""The benchmark summary: pytest-benchmark JSON files -> a markdown ranking and a plot.

    python -m conformance.bench.report results/benchmarks/*.json [-o results/benchmarks.md]
        [--plot results/benchmarks.png]

One table per problem (device, dtype, N x C, forward or forward+backward) ranking every
framework's implementations by median time, with GB/s from the byte model, the fraction of
the copy bandwidth measured in the same process, peak extra memory in multiples of the
logits, compile time and the error against the float64 reference. Then fused against naive
per framework, the reference's own cost, and every skip with its reason. The plot shows GB/s
against the class count, fused solid and naive dashed, with the measured copy bandwidth (and
on the CPU one float32 exp per logit) as the physical limit beside them.

Skip lists are read from <name>.skips.json beside each <name>.json when present.
"""
import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

MODES = {"fwd": "forward", "fwdbwd": "forward+backward"}
FRAMEWORK_ORDER = ("numpy", "torch", "jax", "tensorflow", "tf_keras",
                   "keras-tensorflow", "keras-jax", "keras-torch", "keras-numpy")
COLOURS = {
    "numpy": "#616161", "torch": "#e65100", "jax": "#2e7d32", "tensorflow": "#1565c0",
    "tf_keras": "#6a1b9a", "keras-tensorflow": "#00838f", "keras-jax": "#9e9d24",
    "keras-torch": "#ad1457", "keras-numpy": "#8d6e63",
}
MARKERS = {"fused": "o", "lse": "o", "fused-compile": "^", "fused-xla": "s", "fused-dense": "D", "naive": "x"}


class ReportError(Exception):
    pass


def load(paths):
    """(benchmarks, skips, machines) from pytest-benchmark JSON files."""
    benchmarks, skips, machines = [], [], []
    for name in paths:
        path = Path(name)
        if path.name.endswith(".skips.json"):
            continue
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReportError(f"{path}: cannot read a pytest-benchmark JSON file ({exc})") from None
        if not isinstance(document, dict) or "benchmarks" not in document:
            raise ReportError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks')")
        machines.append(document.get("machine_info", {}))
        for entry in document["benchmarks"]:
            info = dict(entry.get("extra_info") or {})
            if "framework" not in info:
                continue
            info.setdefault("median_s", entry["stats"]["median"])
            info.setdefault("min_s", entry["stats"]["min"])
            info["name"] = entry.get("name", "")
            info["source"] = path.name
            benchmarks.append(info)
        sidecar = path.with_name(path.name.removesuffix(".json") + ".skips.json")
        if sidecar.exists():
            try:
                skips += json.loads(sidecar.read_text()).get("skipped", [])
            except (OSError, ValueError):
                pass
    return benchmarks, skips, machines


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
        lines += [title, "", f"logits {_bytes(n * c * _itemsize(dtype))}; byte model: {sample.get('byte_model', '')}"
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


def _itemsize(dtype):
    return {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}.get(dtype, 4)


def speedup_table(kernels):
    """Per framework and problem: naive median / the best fused median."""
    cells = defaultdict(dict)
    columns = set()
    for (framework, device, dtype, c, n, mode), group in _by(kernels, ("framework", "device", "dtype", "C", "N", "mode")).items():
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
    for framework in sorted(cells, key=_framework_rank):
        rows.append([framework] + [f"{cells[framework][col]:.2f}" if col in cells[framework] else "" for col in columns])
    return ["## Fused against naive", "",
            "Naive median / best fused median of the same framework (above 1: the fused kernel is faster).", ""] \
        + _table(header, rows) + [""]


def _by(items, keys):
    groups = defaultdict(list)
    for b in items:
        groups[tuple(b.get(k) for k in keys)].append(b)
    return groups


def _framework_rank(name):
    return FRAMEWORK_ORDER.index(name) if name in FRAMEWORK_ORDER else len(FRAMEWORK_ORDER)


def reference_section(references, skips):
    if not references and not any("reference-" in s["nodeid"] for s in skips):
        return []
    lines = ["## The reference's own cost", "",
             "reference.losses.sparse_softmax_cross_entropy (float64) on float32 logits: `direct` as written, "
             "`chunked` = conformance.bench.measure.reference_loss_chunked (row blocks of about 16 MiB of "
             "float64), which the kernel benchmarks use for their error column.", ""]
    rows = []
    for b in sorted(references, key=lambda b: (b["N"], b["impl"])):
        rows.append([f"{b['N']:,} × {b['C']:,}", b["impl"], f"{b['median_s']:.3g}", _num(b.get("gelem_per_s"), 3),
                     _bytes(b.get("input_bytes")), _bytes(b.get("peak_extra_bytes")), _num(b.get("peak_extra_x"), 3)])
    if rows:
        lines += _table(["N × C", "method", "median s", "Gelem/s", "input", "peak extra", "peak extra ×input"], rows)
    direct = [b for b in references if b["impl"] == "direct" and isinstance(b.get("peak_extra_x"), (int, float))]
    if direct:
        last = max(direct, key=lambda b: b["N"])
        need = (last["peak_extra_x"] + 1) * 8192 * last["C"] * 4
        total = last.get("mem_total_bytes")
        verdict = (f"more than this machine's {_bytes(total)}" if total and need > total else
                   f"within this machine's {_bytes(total)}" if total else "")
        lines += ["", f"Direct evaluation at 8,192 × {last['C']:,} would need about {_bytes(need)} "
                      f"(input and {last['peak_extra_x']:.1f}× its size in temporaries, measured at N={last['N']:,}): "
                      f"{verdict}; the chunked helper's peak does not grow with N."]
    for s in skips:
        if "reference-" in s["nodeid"]:
            lines += ["", f"- skipped `{s['nodeid'].split('[')[-1].rstrip(']')}`: {s['reason']}"]
    return lines + [""]


def skip_section(skips):
    kept = [s for s in skips if "reference-" not in s["nodeid"]]
    if not kept:
        return []
    counts = defaultdict(int)
    for s in kept:
        ident = s["nodeid"].split("[")[-1].rstrip("]")
        framework = next((f for f in sorted(FRAMEWORK_ORDER, key=len, reverse=True) if ident.startswith(f + "-")), ident)
        counts[(framework, s["reason"])] += 1
    rows = [[f, n, reason] for (f, reason), n in sorted(counts.items(), key=lambda kv: (_framework_rank(kv[0][0]), kv[0][1]))]
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
        lines.append("- versions: " + ", ".join(f"{f} {v}" for f, v in sorted(versions.items(), key=lambda kv: _framework_rank(kv[0]))))
    threads = {}
    for b in kernels:
        threads.setdefault(b["framework"], b.get("threads") or {})
    if threads:
        def pools(t):
            return ", ".join(f"{k}={v}" for k, v in t.items())
        lines.append("- threads: " + "; ".join(f"{f}: {pools(t)}" for f, t in sorted(threads.items(), key=lambda kv: _framework_rank(kv[0]))))
    if machines:
        python = {m.get("python_version") for m in machines}
        lines.append(f"- python {', '.join(sorted(p for p in python if p))}; profile {', '.join(profiles) or 'n/a'}")
    loads = [x for b in kernels for x in (b.get("load_1m") or [])]
    if loads:
        lines.append(f"- 1-minute load average while timing: {min(loads):.1f} to {max(loads):.1f} "
                     "(this process included)")
    lines += ["", "Columns: GB/s = the byte model (logits read once + labels + loss; forward+backward adds "
                  "the gradient written once) / median; % copy BW = that / the copy bandwidth, the physical "
                  "limit for a memory-bound kernel; exp passes (CPU) = median / the time of one float32 exp "
                  "per logit, the compute roof on a CPU; peak extra ×E = peak memory above the inputs "
                  "during one call, outputs included, in multiples of the logits (torch and NumPy on a CPU: "
                  "the resident-set high-water mark; TensorFlow: its allocator's peak; JAX: XLA's "
                  "memory analysis of the compiled call; torch on a GPU: max_memory_allocated); compile s = tracing/compilation and "
                  "first call where the implementation compiles; max abs err = the loss against the "
                  "float64 reference (and the gradient's). Inputs smaller than the last-level cache are "
                  "cycled through copies, so that a call does not find them in the cache.", ""]
    return lines


def render(benchmarks, skips, machines):
    kernels = [b for b in benchmarks if b.get("framework") != "reference"]
    references = [b for b in benchmarks if b.get("framework") == "reference"]
    lines = header_section(kernels, machines, references)
    if kernels:
        lines += ["## Ranking per problem", ""] + ranking_tables(kernels)
        lines += speedup_table(kernels)
    lines += reference_section(references, skips)
    lines += skip_section(skips)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- the plot

def plot(benchmarks, path):
    """GB/s against the class count, one panel per device/dtype and mode; True when written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        print(f"no plot: matplotlib is not available ({exc})", file=sys.stderr)
        return False
    kernels = [b for b in benchmarks if b.get("framework") != "reference" and isinstance(b.get("gbps"), (int, float))]
    if not kernels:
        return False
    rows = sorted({(b["device"], b["dtype"]) for b in kernels})
    modes = [m for m in MODES if any(b["mode"] == m for b in kernels)]
    figure = Figure(figsize=(6.2 * len(modes) + 2.6, 4.6 * len(rows)), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), len(modes), squeeze=False)
    series_seen = {}
    for r, (device, dtype) in enumerate(rows):
        for m, mode in enumerate(modes):
            ax = axes[r][m]
            panel = [b for b in kernels if (b["device"], b["dtype"], b["mode"]) == (device, dtype, mode)]
            for (framework, impl), group in sorted(_by(panel, ("framework", "impl")).items(),
                                                   key=lambda kv: (_framework_rank(kv[0][0]), kv[0][1])):
                group = sorted(group, key=lambda b: b["C"])
                naive = group[0].get("kind") == "naive"
                label = f"{framework} {impl}"
                line = ax.plot([b["C"] for b in group], [b["gbps"] for b in group],
                               color=COLOURS.get(framework, "#000000"), linestyle="--" if naive else "-",
                               marker=MARKERS.get(impl, "o"), markersize=4.5, linewidth=1.3,
                               alpha=0.75 if naive else 1.0)[0]
                series_seen.setdefault(label, line)
            copies = sorted({b["copy_gbps"] for b in panel if b.get("copy_gbps")})
            if copies:
                copy = statistics.median(copies)  # one measurement per process: the middle one
                ax.axhline(copy, color="black", linewidth=1.6)
                ax.annotate(f"copy bandwidth {copy:.3g} GB/s", (0.98, copy), xycoords=("axes fraction", "data"),
                            xytext=(0, 3), textcoords="offset points", fontsize=8, ha="right")
            exp_rates = sorted({b["N"] * b["C"] / b["exp_pass_s"] for b in panel if b.get("exp_pass_s")})
            if exp_rates:
                # one exp per logit: the logits (and gradient) bytes over that time
                per_logit = (2 if mode == "fwdbwd" else 1) * _itemsize(dtype)
                roof = statistics.median(exp_rates) * per_logit / 1e9
                ax.axhline(roof, color="black", linewidth=1.0, linestyle=":")
                ax.annotate(f"one exp per logit (NumPy) ≈ {roof:.3g} GB/s", (0.02, roof),
                            xycoords=("axes fraction", "data"), xytext=(0, -10), textcoords="offset points", fontsize=8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            sizes = sorted({(b["C"], b["N"]) for b in panel})
            ax.set_xticks([c for c, _ in sizes])
            ax.set_xticklabels([f"{c:,}\nN={n:,}" for c, n in sizes], fontsize=7)
            ax.minorticks_off()
            ax.set_xlabel("classes C (rows N)")
            ax.set_ylabel("GB/s (byte model / median)")
            ax.set_title(f"{device} · {dtype} · {MODES[mode]}", fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
    handles = list(series_seen.values())
    handles += [Line2D([], [], color="black", linewidth=1.6, label="copy bandwidth (measured)"),
                Line2D([], [], color="black", linestyle=":", label="one exp per logit (CPU)")]
    labels = list(series_seen) + ["copy bandwidth (measured)", "one exp per logit (CPU)"]
    figure.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False,
                  title="solid: fused, dashed: naive", title_fontsize=8)
    figure.suptitle("Sparse softmax cross-entropy: effective bandwidth against class count", fontsize=11)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m conformance.bench.report", description=__doc__.split("\n")[0])
    parser.add_argument("json", nargs="+", help="pytest-benchmark --benchmark-json files")
    parser.add_argument("-o", "--output", help="write the markdown here (it is printed as well)")
    parser.add_argument("--plot", help="write the PNG plot here")
    args = parser.parse_args(argv)
    try:
        benchmarks, skips, machines = load(args.json)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render(benchmarks, skips, machines)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"markdown: {args.output}")
    if args.plot and plot(benchmarks, args.plot):
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
