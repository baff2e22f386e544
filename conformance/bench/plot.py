"""The benchmark plot: GB/s against the class count, one panel per device/dtype and mode, fused
solid and naive dashed, with the measured copy bandwidth (and on the CPU one float32 exp per
logit) as the physical limits beside them.
"""
import statistics
import sys
from pathlib import Path

from conformance import frameworks
from conformance.bench.records import MODES, REFERENCE, by, framework_rank, itemsize

# Built-in frameworks take these in the order of the suite's table, so a framework keeps its
# colour whatever else is plotted; plug-ins take the colours after them.
PALETTE = ("#616161", "#1565c0", "#e65100", "#2e7d32", "#00838f", "#9e9d24", "#ad1457", "#8d6e63", "#6a1b9a",
           "#c62828", "#283593", "#00695c", "#f9a825", "#4e342e", "#37474f", "#ef6c00", "#1b5e20")
FUSED_MARKERS = ("o", "^", "s", "D", "v", "P")  # a framework's fused kernels, in the order of their names
NAIVE_MARKER = "x"


def colours(names):
    """framework -> colour: built-ins by their place in the table, plug-ins after them."""
    plugins = sorted((n for n in names if n not in frameworks.BUILTIN), key=framework_rank)
    builtin = frameworks.BUILTIN_IDS
    return {name: PALETTE[(builtin.index(name) if name in builtin else len(builtin) + plugins.index(name))
                          % len(PALETTE)] for name in names}


def markers(kernels):
    """(framework, impl) -> marker: naive kernels an x, fused ones by the order of their names."""
    found = {}
    for (framework,), group in by(kernels, ("framework",)).items():
        fused = sorted({b["impl"] for b in group if b.get("kind") != "naive"})
        for b in group:
            key = (framework, b["impl"])
            found[key] = NAIVE_MARKER if b.get("kind") == "naive" else \
                FUSED_MARKERS[fused.index(b["impl"]) % len(FUSED_MARKERS)]
    return found


def _panel(ax, panel, device, dtype, mode, style, series_seen):
    colour, marker = style
    for (framework, impl), group in sorted(by(panel, ("framework", "impl")).items(),
                                           key=lambda kv: (framework_rank(kv[0][0]), kv[0][1])):
        group = sorted(group, key=lambda b: b["C"])
        naive = group[0].get("kind") == "naive"
        line = ax.plot([b["C"] for b in group], [b["gbps"] for b in group],
                       color=colour[framework], linestyle="--" if naive else "-",
                       marker=marker[(framework, impl)], markersize=4.5, linewidth=1.3,
                       alpha=0.75 if naive else 1.0)[0]
        series_seen.setdefault(f"{framework} {impl}", line)
    copies = sorted({b["copy_gbps"] for b in panel if b.get("copy_gbps")})
    if copies:
        copy = statistics.median(copies)  # one measurement per process: the middle one
        ax.axhline(copy, color="black", linewidth=1.6)
        ax.annotate(f"copy bandwidth {copy:.3g} GB/s", (0.98, copy), xycoords=("axes fraction", "data"),
                    xytext=(0, 3), textcoords="offset points", fontsize=8, ha="right")
    exp_rates = sorted({b["N"] * b["C"] / b["exp_pass_s"] for b in panel if b.get("exp_pass_s")})
    if exp_rates:
        # one exp per logit: the logits (and gradient) bytes over that time
        per_logit = (2 if mode == "fwdbwd" else 1) * itemsize(dtype)
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


def plot(benchmarks, path):
    """GB/s against the class count, one panel per device/dtype and mode; True when written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        print(f"no plot: matplotlib is not available ({exc})", file=sys.stderr)
        return False
    kernels = [b for b in benchmarks if b.get("framework") != REFERENCE and isinstance(b.get("gbps"), (int, float))]
    if not kernels:
        return False
    rows = sorted({(b["device"], b["dtype"]) for b in kernels})
    modes = [m for m in MODES if any(b["mode"] == m for b in kernels)]
    figure = Figure(figsize=(6.2 * len(modes) + 2.6, 4.6 * len(rows)), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), len(modes), squeeze=False)
    style = (colours({b["framework"] for b in kernels}), markers(kernels))
    series_seen = {}
    for r, (device, dtype) in enumerate(rows):
        for m, mode in enumerate(modes):
            panel = [b for b in kernels if (b["device"], b["dtype"], b["mode"]) == (device, dtype, mode)]
            _panel(axes[r][m], panel, device, dtype, mode, style, series_seen)
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
