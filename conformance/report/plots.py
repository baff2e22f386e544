"""The report's pictures, as PNG bytes: the article's curves and the error heatmap.

matplotlib is optional (the `report` extra). `available()` says whether it can be imported;
every other function needs it. The object-oriented API (Figure + the Agg canvas) is used
instead of pyplot, so nothing global is touched and no display is needed.
"""
import io
import math

import numpy as np

from conformance.report.model import ulp_text
from conformance.results.records import read_number
from reference.ops.binary import binary_crossentropy, sigmoid_cross_entropy_grad
from reference.ops.squared_error import mean_squared_error, sigmoid_half_squared_error_grad

# Colours shared with the HTML report (html.py), so a picture and a table agree.
FAILED = "#c62828"
KNOWN = "#6a1b9a"
CE_COLOUR = "#1565c0"
QUADRATIC_COLOUR = "#e65100"
LABEL_COLOURS = {0.0: "#1565c0", 0.5: "#2e7d32", 1.0: "#c62828"}


def available():
    """(True, "") when matplotlib can draw here, else (False, the reason in a sentence)."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return False, f"matplotlib is not available ({type(exc).__name__}: {exc})"
    return True, ""


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _style(axes):
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def article_curves():
    """The cross-entropy -[y ln a + (1 - y) ln(1 - a)] over a in (0, 1), y = 0, 1/2, 1.

    Drawn from reference.ops.binary.binary_crossentropy, beside the article's quadratic cost
    1/2 (a - y)^2 (dotted) for the same labels: the cross-entropy grows without bound as the
    output moves to the wrong end, the quadratic cost never exceeds 1/2.
    """
    a = np.linspace(1e-4, 1 - 1e-4, 2001)
    figure = _figure(8.4, 3.9)
    axes = figure.add_subplot()
    for y, colour in LABEL_COLOURS.items():
        labels = np.full_like(a, y)
        axes.plot(a, binary_crossentropy(a, labels), color=colour, linewidth=2,
                  label=f"cross-entropy, y = {y:g}")
        axes.plot(a, mean_squared_error(a, labels, half=True), color=colour, linewidth=1.4,
                  linestyle=(0, (2, 2)), alpha=0.8, label=f"½ (a − y)², y = {y:g}")
    axes.plot([0.5], [math.log(2)], "o", color=LABEL_COLOURS[0.5], markersize=4)
    axes.annotate("ln 2: the minimum for y = ½ is not 0", (0.5, math.log(2)), xytext=(0.32, 1.9),
                  fontsize=8, color="#333333", arrowprops={"arrowstyle": "->", "color": "#777777"})
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 4.5)
    axes.set_xlabel("output a = σ(z)")
    axes.set_ylabel("cost C")
    axes.set_title("Cross-entropy −[y ln a + (1 − y) ln(1 − a)] against the quadratic cost", fontsize=10)
    _style(axes)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(figure)


def gradient_saturation():
    """dC/dz through a sigmoid: sigmoid(z) - y for cross-entropy, (a - y) a (1 - a) for 1/2 (a - y)^2.

    Left, linear, for y = 0 and y = 1; right, |dC/dz| on a log scale for y = 0: when the
    neuron is confidently wrong (z large, a near 1) the cross-entropy gradient stays near 1
    while the quadratic cost's gradient vanishes like e^-z. That is the article's point.
    """
    figure = _figure(9.6, 3.9)
    left, right = figure.subplots(1, 2)
    z = np.linspace(-8, 8, 1601)
    for y, style in ((0.0, "-"), (1.0, "--")):
        labels = np.full_like(z, y)
        left.plot(z, sigmoid_cross_entropy_grad(z, labels), color=CE_COLOUR, linestyle=style, linewidth=2,
                  label=f"cross-entropy: σ(z) − y, y = {y:g}")
        left.plot(z, sigmoid_half_squared_error_grad(z, labels), color=QUADRATIC_COLOUR, linestyle=style,
                  linewidth=2, label=f"½ (a − y)²: (a − y) a (1 − a), y = {y:g}")
    left.axhline(0, color="#999999", linewidth=0.8)
    left.set_xlim(-8, 8)
    left.set_ylim(-1.1, 1.1)
    left.set_xlabel("logit z")
    left.set_ylabel("dC/dz")
    left.set_title("Gradient with respect to the logit", fontsize=10)
    _style(left)
    left.legend(fontsize=7, loc="upper left", frameon=False)

    z = np.linspace(-20, 20, 2001)
    labels = np.zeros_like(z)
    with np.errstate(divide="ignore"):
        right.semilogy(z, np.abs(sigmoid_cross_entropy_grad(z, labels)), color=CE_COLOUR, linewidth=2,
                       label="cross-entropy |σ(z) − y|")
        right.semilogy(z, np.abs(sigmoid_half_squared_error_grad(z, labels)), color=QUADRATIC_COLOUR,
                       linewidth=2, label="½ (a − y)²: |(a − y) a (1 − a)|")
    right.axvspan(4, 20, color="#fdecea", zorder=0)
    right.text(12, 3e-9, "wrong and saturated:\nthe quadratic cost\nstops learning", ha="center", fontsize=8,
               color=FAILED)
    right.set_xlim(-20, 20)
    right.set_ylim(1e-17, 10)
    right.set_xlabel("logit z (label y = 0)")
    right.set_ylabel("|dC/dz|")
    right.set_title("Saturation, label y = 0 (log scale)", fontsize=10)
    _style(right)
    right.legend(fontsize=7, loc="lower right", frameon=False)
    return _png(figure)


def error_heatmap(frameworks, ops, cells):
    """framework x op, colour = max ULP error (log scale), marks for the other outcomes.

    cells maps (framework, op) to a dict with `ulp` (max ULP error of the compared checks,
    or None when none was compared), `failed` (count of failed, error and xpassed checks),
    `known` (count of known divergences) and `ran` (count of checks that ran at all).
    A cell where nothing ran is grey and hatched (skipped: not offered, not installed or no
    device); F marks failures, K known divergences.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    floor = 0.1  # an exact result (0 ULP) is drawn at the floor of the scale
    values = [c["ulp"] for c in cells.values() if c.get("ulp") is not None and math.isfinite(c["ulp"])]
    top = max([10.0] + [v for v in values if v > 0])
    norm = LogNorm(vmin=floor, vmax=10 ** math.ceil(math.log10(top)))
    grid = np.full((len(frameworks), len(ops)), np.nan)
    for (f, op), cell in cells.items():
        if cell.get("ulp") is not None and f in frameworks and op in ops:
            ulp = cell["ulp"]
            grid[frameworks.index(f), ops.index(op)] = max(ulp, floor) if math.isfinite(ulp) else norm.vmax

    figure = _figure(1.2 + 1.05 * len(ops), 1.3 + 0.42 * len(frameworks) + 1.2)
    axes = figure.add_subplot()
    colours = _colormap()
    image = axes.imshow(np.ma.masked_invalid(grid), cmap=colours, norm=norm, aspect="auto")
    for i, f in enumerate(frameworks):
        for j, op in enumerate(ops):
            cell = cells.get((f, op), {})
            if not cell.get("ran"):
                axes.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#eeeeee", edgecolor="#bbbbbb",
                                         hatch="///", linewidth=0))
                continue
            ulp = cell.get("ulp")
            if ulp is not None and math.isnan(ulp):
                ulp = math.inf  # a NaN where the reference is finite: as bad as it gets
            marks = []
            if cell.get("failed"):
                marks.append(f"F{cell['failed']}")
            if cell.get("known"):
                marks.append(f"K{cell['known']}")
            text = _ulp_text(ulp) if ulp is not None else ""
            if marks:
                text = (text + "\n" if text else "") + " ".join(marks)
            dark = ulp is not None and (not math.isfinite(ulp) or norm(max(ulp, floor)) > 0.55)
            axes.text(j, i, text, ha="center", va="center", fontsize=7.5,
                      color="white" if dark else "#222222",
                      fontweight="bold" if cell.get("failed") else "normal")
            if cell.get("failed"):
                axes.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor=FAILED,
                                         linewidth=2.2))
            elif cell.get("known"):
                axes.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor=KNOWN,
                                         linewidth=1.4, linestyle="--"))
    axes.set_xticks(range(len(ops)), [op.replace("_", "_\u200b") for op in ops], rotation=30, ha="right",
                    fontsize=8)
    axes.set_yticks(range(len(frameworks)), frameworks, fontsize=8.5)
    axes.set_xticks(np.arange(-0.5, len(ops)), minor=True)
    axes.set_yticks(np.arange(-0.5, len(frameworks)), minor=True)
    axes.grid(which="minor", color="white", linewidth=2)
    axes.tick_params(which="minor", length=0)
    for side in axes.spines.values():
        side.set_visible(False)
    bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    bar.set_label(f"max ULP error (log scale; 0 drawn at {floor:g})", fontsize=8)
    bar.ax.tick_params(labelsize=7.5)
    axes.set_title("Max ULP error per framework and op (loss and gradient, every dtype and device)\n"
                   "F failed, K known divergence (not counted in the colour), hatched: nothing ran",
                   fontsize=9)
    return _png(figure)


def _colormap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "ulp", ["#e8f5e9", "#a5d6a7", "#fff59d", "#ffb74d", "#e64a19", "#7f0000"])


def _ulp_text(ulp):
    """model.ulp_text, shorter from 10 up (1.7e+03, not 1,700): it must fit in a heatmap cell."""
    ulp = read_number(ulp)
    if ulp is not None and math.isfinite(ulp) and ulp >= 10:
        return f"{ulp:.3g}"
    return ulp_text(ulp)


def history(rows):
    """PNG: each check's max ULP error across the runs kept (results/history), failures marked."""
    figure = _figure(8.0, 3.8)
    axes = figure.add_subplot()
    runs = sorted({run for run, _, _, _ in rows})
    measured = [(run, name, outcome, read_number(ulp)) for run, name, outcome, ulp in rows]  # "inf" is a str
    for check in sorted({check for _, check, _, _ in rows}):
        points = [(runs.index(run), ulp, outcome) for run, name, outcome, ulp in measured
                  if name == check and ulp is not None and math.isfinite(ulp)]
        if not points:
            continue
        xs, ys, outcomes = zip(*points)
        axes.plot(xs, [max(y, 1e-3) for y in ys], marker="o", linewidth=1.4, label=check)
        for x, y, outcome in points:
            if outcome in ("failed", "error", "xfailed"):
                axes.plot([x], [max(y, 1e-3)], marker="X", markersize=10,
                          color=FAILED if outcome != "xfailed" else KNOWN)
    axes.set_yscale("log")
    axes.set_xticks(range(len(runs)), [run.split("--")[0] for run in runs], rotation=30, ha="right", fontsize=7)
    axes.set_ylabel("max error (ULP)")
    axes.set_title("A check across the runs kept (X: failed, or a known divergence)", fontsize=10)
    if len(axes.get_lines()):
        axes.legend(fontsize=7, loc="upper left")
    _style(axes)
    return _png(figure)
