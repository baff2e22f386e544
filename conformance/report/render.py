"""Markdown and HTML reports of one or more results files: what people read.

Sections, in order:
  1. the environment (framework versions, Keras backends, devices, date, inputs) and totals;
  2. pictures (matplotlib, optional): the article's cross-entropy curves and gradients drawn
     from the reference, and a heatmap of the matrix (framework x op, max ULP error);
  3. the accuracy table, in the style of libm's accuracy tables: the largest ULP error
     observed per framework x op x dtype, loss and gradient apart;
  4. the matrix: op x dtype x device rows, framework columns, outcomes and max ULP error;
  5. the known divergences that matched (manifest entry, reason, what was observed, link),
     and the manifest entries that matched nothing;
  6. the failures, each with the input that reproduces it and a one-line pytest command;
  7. the skipped checks, counted by framework and reason.

The document is built once as a list of blocks and written out as GitHub-flavoured markdown
or as one self-contained HTML file (inline CSS, pictures embedded as base64 PNG data URIs).
For markdown, the pictures are PNG files written next to the output file and linked.
"""
import base64
import html
import math
import re
import shlex
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from conformance import FRAMEWORK_IDS

REPO = Path(__file__).resolve().parents[2]
OP_ORDER = ("sigmoid_cross_entropy", "binary_crossentropy", "softmax_cross_entropy", "categorical_crossentropy",
            "sparse_softmax_cross_entropy", "sparse_categorical_crossentropy", "mean_squared_error")
DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
DEVICE_ORDER = ("cpu", "cuda")
QUANTITY_ORDER = ("loss", "grad_logits", "grad_labels")
QUANTITY_LABELS = {"loss": "loss", "grad_logits": "gradient", "grad_labels": "gradient (labels)"}
FAILING = ("failed", "error", "xpassed")
LETTERS = {"passed": "P", "failed": "F", "error": "E", "xfailed": "K", "xpassed": "X", "skipped": "S"}
OUTCOME_WORDS = {"passed": "passed", "failed": "failed", "error": "error", "xfailed": "known divergence",
                 "xpassed": "fixed divergence (xpassed)", "skipped": "skipped"}
MAX_FAILURES = 200  # listed one by one; the rest are counted
MAX_OBSERVED = 6  # checks shown per known divergence


# --- inline text: a str is literal; these mark code, links and emphasis ---------------------

@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass
class Cell:
    content: object = ""  # inline: str, Code, Link, Strong or a list of them
    cls: str = ""  # CSS class (HTML only)
    title: str = ""  # tooltip (HTML only)
    sub: str = ""  # a second, smaller line (" · sub" in markdown)


# --- blocks -----------------------------------------------------------------------------------

@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    content: object
    cls: str = ""


@dataclass
class Bullets:
    items: list


@dataclass
class Table:
    header: list
    rows: list  # lists of Cell (or inline content); a row may be (cells, row_class)
    cls: str = ""
    caption: object = ""


@dataclass
class Image:
    key: str
    png: bytes
    alt: str
    caption: object = ""


@dataclass
class Pre:
    text: str
    cls: str = ""


@dataclass
class Cards:
    items: list  # (number, label, css class)


@dataclass
class Section:
    """A box around a group of blocks (a known divergence, a failure): <section> / a rule."""
    blocks: list = field(default_factory=list)
    cls: str = ""


# --- small helpers ----------------------------------------------------------------------------

def _rank(value, order):
    return (order.index(value), "") if value in order else (len(order), str(value))


def _frameworks(values):
    return sorted(set(values), key=lambda f: _rank(f, FRAMEWORK_IDS))


def _ulp(record):
    """max_ulp_err as a float ('inf' and 'nan' strings included), or None when not measured."""
    value = record.get("max_ulp_err")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _max(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values)


def ulp_text(ulp):
    if ulp is None:
        return ""
    if math.isnan(ulp):
        return "nan"
    if math.isinf(ulp):
        return "inf"
    if ulp == 0:
        return "0"
    if ulp < 10:
        return f"{ulp:.2g}"
    if ulp < 1e5:
        return f"{ulp:,.0f}"
    return f"{ulp:.2e}"


def _ulp_class(ulp):
    if ulp is None:
        return ""
    if math.isnan(ulp) or ulp > 1e3:
        return "u5"
    for limit, cls in ((0, "u0"), (1, "u1"), (4, "u2"), (16, "u3"), (1e3, "u4")):
        if ulp <= limit:
            return cls
    return "u5"


def _number(value, dtype=None):
    if isinstance(value, str) or value is None:
        return str(value)
    if isinstance(value, float):
        digits = 17 if dtype == "float64" else 9 if dtype == "float32" else 5
        return f"{value:.{digits}g}"
    return str(value)


def _summary(value, dtype=None):
    """An array summary from a record (shape, worst, index, values) in one line."""
    if not isinstance(value, dict):
        return "-" if value is None else str(value)
    values = value.get("values")
    if values is not None and len(values) <= 4:
        text = "[" + ", ".join(_number(v, dtype) for v in values) + "]"
    else:
        text = f"{_number(value.get('worst'), dtype)} at {tuple(value.get('index', ()))}"
    shape = value.get("shape")
    if shape is not None:
        text += f" (shape {list(shape)}{', ' + value['dtype'] if value.get('dtype') else ''})"
    return text


def case_file(record):
    """The case file, relative to the repository when it lies inside it."""
    path = record.get("file") or ""
    if not path:
        return ""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except (ValueError, OSError):
        return path


def pytest_id(record):
    """The pytest parameter id of a record's check (conformance.checks.Check.param_id)."""
    pinned = "-pinned" if record.get("kind") == "pinned" or str(record.get("id", "")).endswith("::pinned") else ""
    return (f"{record.get('case')}-{record.get('framework')}-{record.get('dtype')}-{record.get('device')}-"
            f"{record.get('quantity')}{pinned}")


def reproduce_command(record):
    """One line that runs exactly this check: its case file, its test id, its framework required."""
    framework = record.get("framework", "")
    node = f"conformance/pytest/suite/test_matrix.py::test_check[{pytest_id(record)}]"
    words = []
    if framework.startswith("keras-"):
        words.append(f"KERAS_BACKEND={framework.removeprefix('keras-')}")
    words += ["python", "-m", "pytest", shlex.quote(node)]
    if case_file(record):
        words += ["--cases", shlex.quote(case_file(record))]
    if framework.startswith("keras-"):
        words += ["--framework", framework]
    if framework:
        words += ["--require", framework]
    words += ["-p", "no:cacheprovider"]
    return " ".join(words)


def _count(n, outcome):
    """'3 passed', '1 known divergence', '2 known divergences'."""
    word = OUTCOME_WORDS[outcome]
    if n != 1 and word.endswith("divergence"):
        word += "s"
    elif n != 1 and "divergence (" in word:
        word = word.replace("divergence (", "divergences (")
    return f"{n} {word}"


def _first_line(text):
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


# --- the data -------------------------------------------------------------------------------

class Data:
    """What the sections need, computed once from the merged records."""

    def __init__(self, env, records, sources=None, manifest=None, manifest_error=""):
        self.env = env or {}
        self.records = records
        self.sources = sources or []
        self.manifest = manifest or []
        self.manifest_error = manifest_error
        self.frameworks = _frameworks(r.get("framework", "?") for r in records)
        self.ops = sorted({r.get("op", "?") for r in records}, key=lambda o: _rank(o, OP_ORDER))
        self.dtypes = sorted({r.get("dtype", "?") for r in records}, key=lambda d: _rank(d, DTYPE_ORDER))
        self.devices = sorted({r.get("device", "?") for r in records}, key=lambda d: _rank(d, DEVICE_ORDER))
        self.outcomes = Counter(r["outcome"] for r in records)
        self.failures = [r for r in records if r["outcome"] in FAILING]

    def ran(self, records):
        return [r for r in records if r["outcome"] != "skipped"]

    def compared_ulps(self, records):
        """ULP errors that count as accuracy: reference checks that passed or failed (not known divergences)."""
        return [_ulp(r) for r in records
                if r.get("kind", "reference") == "reference" and r["outcome"] in ("passed", "failed")]

    def heatmap_cells(self):
        groups = defaultdict(list)
        for r in self.records:
            groups[(r.get("framework"), r.get("op"))].append(r)
        cells = {}
        for key, group in groups.items():
            outcomes = Counter(r["outcome"] for r in group)
            cells[key] = {"ulp": _max(self.compared_ulps(group)),
                          "failed": sum(outcomes[o] for o in FAILING),
                          "known": outcomes["xfailed"],
                          "ran": len(self.ran(group))}
        return cells


# --- sections ---------------------------------------------------------------------------------

def _environment(data):
    blocks = [Heading(2, "Environment", "environment")]
    env = data.env
    sources = data.sources
    if len(sources) > 1:
        items = []
        for path, source_env in sources:
            items.append([Code(str(path)), f": {source_env.get('date', '?')}, Python {source_env.get('python', '?')}, "
                          f"{source_env.get('platform', '?')}"])
        blocks.append(Para(f"Merged from {len(sources)} results files:"))
        blocks.append(Bullets(items))
    else:
        where = str(sources[0][0]) if sources else ""
        blocks.append(Para([f"Run {env.get('date', '?')} · Python {env.get('python', '?')} · "
                            f"{env.get('platform', '?')}" + (" · " if where else ""), Code(where) if where else ""]))
    info = env.get("frameworks", {}) or {}
    by_framework = defaultdict(list)
    for r in data.records:
        by_framework[r.get("framework")].append(r)
    rows = []
    for name in _frameworks(list(info) + list(by_framework)):
        fi = info.get(name, {}) or {}
        group = by_framework.get(name, [])
        versions = [str(fi["version"])] if fi.get("version") else []  # the environment's, then any other
        versions += sorted({str(r["framework_version"]) for r in group if r.get("framework_version")} - set(versions))
        version = ", ".join(versions)
        ran = data.ran(group)
        if not version:
            version_cell = Cell(Strong("not installed"), "skip", fi.get("unavailable", ""))
        else:
            version_cell = Cell(version)
        devices_checked = sorted({r.get("device") for r in ran}, key=lambda d: _rank(d, DEVICE_ORDER))
        devices_env = list(fi.get("devices") or [])
        rows.append([Cell(Code(name)), version_cell, Cell(fi.get("backend", "")),
                     Cell(", ".join(devices_env) or "-"), Cell(", ".join(devices_checked) or "-"),
                     Cell(f"{len(ran)} / {len(group)}", "num")])
    blocks.append(Table(["framework", "version", "Keras backend", "devices seen", "devices checked",
                         "checks run / total"], rows, "env"))
    return blocks


def _totals(data):
    o = data.outcomes
    cards = [(len(data.records), "checks", ""), (o["passed"], "passed", "pass"),
             (o["failed"] + o["error"], "failed or error", "fail" if o["failed"] + o["error"] else ""),
             (o["xfailed"], "known divergences", "known"),
             (o["xpassed"], "fixed divergences (xpassed)", "xpass" if o["xpassed"] else ""),
             (o["skipped"], "skipped", "skip")]
    verdict = ("No check failed." if not data.failures else
               f"{len(data.failures)} check(s) failed, errored or passed unexpectedly: see Failures below.")
    return [Cards(cards), Para(Strong(verdict), "verdict fail" if data.failures else "verdict ok")]


def _pictures(data, plots, why):
    blocks = [Heading(2, "Pictures", "pictures")]
    if plots is None:
        return blocks + [Para(["Pictures omitted: ", why,
                               ". Install the report extra (", Code("pip install -e .[report]"),
                               ") to draw them."], "note")]
    blocks.append(Para("The article's argument, drawn from the float64 reference (reference/losses.py, "
                       "reference/gradients.py): cross-entropy grows without bound as the output moves to the "
                       "wrong answer, and its gradient with respect to the logit is a − y, free of the sigmoid's "
                       "derivative; the quadratic cost's gradient carries a (1 − a) and vanishes when the sigmoid "
                       "saturates."))
    blocks.append(Image("curves", plots.article_curves(),
                        "Cross-entropy over the output a for labels 0, 1/2 and 1, against the quadratic cost",
                        "Cross-entropy −[y ln a + (1 − y) ln(1 − a)] for y = 0, ½, 1 (solid) and ½ (a − y)² "
                        "(dashed)."))
    blocks.append(Image("gradients", plots.gradient_saturation(),
                        "Gradients with respect to the logit: sigmoid(z) - y against (a - y) a (1 - a)",
                        "dC/dz through a sigmoid: reference.gradients.sigmoid_cross_entropy (σ(z) − y) and "
                        "reference.gradients.sigmoid_half_squared_error ((a − y) a (1 − a))."))
    cells = data.heatmap_cells()
    if data.frameworks and data.ops:
        blocks.append(Image("heatmap", plots.error_heatmap(data.frameworks, data.ops, cells),
                            "Heatmap of the max ULP error per framework and op",
                            "Max ULP error of the reference checks that passed or failed, per framework and op "
                            "(loss and gradient, every dtype and device). F: failed, error or xpassed checks; "
                            "K: known divergences, whose error is not counted in the colour; hatched: nothing "
                            "ran (not offered, not installed, no device)."))
    return blocks


def _accuracy(data):
    blocks = [Heading(2, "Accuracy: max observed ULP error", "accuracy"),
              Para(["In the style of libm's accuracy tables: the largest error, in ULPs of the output dtype, "
                    "observed over every case of an op, against the float64 reference computed from the inputs "
                    "after they were cast to the dtype under test. Reference checks that passed or failed count; "
                    "known divergences do not (they are semantic differences, listed below) and neither do "
                    "checks against numbers a source printed. A passing check may exceed 4 ULPs where the loss "
                    "is ill-conditioned: the bound has a conditioning term (see ", Code("conformance/tolerances.yaml"),
                    "). ", Strong("!"), " marks a cell with a failed check, K one with only known divergences, "
                    "- an op the framework does not offer or that did not run."])]
    reference = [r for r in data.records if r.get("kind", "reference") == "reference"]
    ran_devices = sorted({r.get("device") for r in data.ran(reference)}, key=lambda d: _rank(d, DEVICE_ORDER))
    columns = []
    for f in data.frameworks:
        for device in ran_devices:
            if any(r.get("framework") == f and r.get("device") == device for r in data.ran(reference)):
                columns.append((f, device))
    if not columns:
        return blocks + [Para("No reference check ran.", "note")]
    groups = defaultdict(list)
    for r in reference:
        groups[(r.get("dtype"), r.get("op"), r.get("quantity"), r.get("framework"), r.get("device"))].append(r)
    header = ["op", "quantity"] + [f if len(ran_devices) == 1 else f"{f} ({d})" for f, d in columns]
    for dtype in data.dtypes:
        rows = []
        for op in data.ops:
            quantities = sorted({r.get("quantity") for r in reference if r.get("op") == op and r.get("dtype") == dtype},
                                key=lambda q: _rank(q, QUANTITY_ORDER))
            for i, quantity in enumerate(quantities):
                cells = []
                for f, device in columns:
                    group = groups.get((dtype, op, quantity, f, device), [])
                    ulp = _max(data.compared_ulps(group))
                    failed = any(r["outcome"] in ("failed", "error") for r in group)
                    known = any(r["outcome"] in ("xfailed", "xpassed") for r in group)
                    if ulp is None:
                        cells.append(Cell("K", "known", "only known divergences ran") if known else
                                     Cell("E" if failed else "-", "fail" if failed else "skip"))
                        continue
                    title = f"{len(data.ran(group))} checks ran"
                    if known:
                        title += "; known divergences not counted"
                    cells.append(Cell(ulp_text(ulp) + (" !" if failed else ""),
                                      ("fail " if failed else "") + _ulp_class(ulp) + " num", title))
                row_cls = "group" if i == 0 else ""
                rows.append(([Cell(Code(op) if i == 0 else ""), Cell(QUANTITY_LABELS.get(quantity, quantity))] + cells,
                             row_cls))
        if rows and any(c.content not in ("-",) for row, _ in rows for c in row[2:]):
            blocks.append(Heading(3, dtype, f"accuracy-{dtype}"))
            blocks.append(Table(header, rows, "accuracy"))
    return blocks


def _matrix(data):
    blocks = [Heading(2, "Matrix: op x framework x dtype x device", "matrix"),
              Para(["Each cell counts the checks (loss and gradient, every case) by outcome: P passed, F failed, "
                    "E error, K known divergence, X fixed divergence (a strict xfail that passed), S skipped; "
                    "then the max ULP error of the reference checks that passed or failed. "
                    "- : nothing ran (the reasons are counted under Skipped checks)."])]
    groups = defaultdict(list)
    for r in data.records:
        groups[(r.get("op"), r.get("dtype"), r.get("device"), r.get("framework"))].append(r)
    rows, omitted = [], Counter()
    for op in data.ops:
        first = True
        for dtype in data.dtypes:
            for device in data.devices:
                row_records = [r for f in data.frameworks for r in groups.get((op, dtype, device, f), [])]
                if not row_records:
                    continue
                if not data.ran(row_records):
                    for r in row_records:
                        omitted[(device, r.get("reason") or "?")] += 1
                    continue
                cells = [Cell(Code(op) if first else ""), Cell(dtype), Cell(device)]
                for f in data.frameworks:
                    cells.append(_matrix_cell(data, groups.get((op, dtype, device, f), [])))
                rows.append((cells, "group" if first else ""))
                first = False
    blocks.append(Table(["op", "dtype", "device"] + list(data.frameworks), rows, "matrix"))
    if omitted:
        parts = ", ".join(f"{n} on {device} ({reason})" for (device, reason), n in sorted(omitted.items()))
        blocks.append(Para(f"Rows where no framework ran a check are left out: {parts}.", "note"))
    return blocks


def _matrix_cell(data, group):
    if not group:
        return Cell("")
    outcomes = Counter(r["outcome"] for r in group)
    ran = {o: n for o, n in outcomes.items() if o != "skipped"}
    if not ran:
        reasons = Counter(f"{r.get('reason') or '?'}: {_first_line(r.get('message'))}" for r in group)
        return Cell("-", "skip", "; ".join(f"{n}x {text}" for text, n in reasons.most_common(3)))
    text = " ".join(f"{n}{LETTERS[o]}" for o, n in sorted(ran.items(), key=lambda kv: "PFEKXS".index(LETTERS[kv[0]])))
    if outcomes["skipped"]:
        text += f" {outcomes['skipped']}S"
    if outcomes["failed"] or outcomes["error"]:
        cls = "fail"
    elif outcomes["xpassed"]:
        cls = "xpass"
    elif outcomes["xfailed"]:
        cls = "known"
    else:
        cls = "pass"
    ulp = _max(data.compared_ulps(group))
    title = "; ".join(_count(n, o) for o, n in outcomes.items())
    return Cell(text, cls, title, (ulp_text(ulp) + " ulp") if ulp is not None else "")


def _divergences(data):
    blocks = [Heading(2, "Known divergences", "divergences"),
              Para(["Entries of the known-divergence manifest (", Code("conformance/divergences.yaml"),
                    ") that matched checks in this run: where a framework differs from the mathematics, from its "
                    "declared variant, or from a number a source printed. An xfail is strict: a check that starts "
                    "passing is reported as a fixed divergence (X), so the entry can be updated."])]
    if data.manifest_error:
        blocks.append(Para(f"The manifest could not be read ({data.manifest_error}); entries are shown by id only.",
                           "note"))
    entries = {e.id: e for e in data.manifest}
    matched = defaultdict(list)
    for r in data.records:
        if r.get("manifest"):
            matched[r["manifest"]].append(r)
    if not matched:
        blocks.append(Para("No manifest entry matched a check.", "note"))
    order = [e.id for e in data.manifest if e.id in matched] + sorted(set(matched) - set(entries))
    summary_rows = []
    for entry_id in order:
        group = matched[entry_id]
        entry = entries.get(entry_id)
        seen = _seen(group)
        outcomes = Counter(r["outcome"] for r in seen)
        counted = ", ".join(_count(n, o) for o, n in sorted(outcomes.items())) or "none ran"
        if len(group) > len(seen):
            counted += f" ({len(group) - len(seen)} not run here)"
        summary_rows.append([Cell(Link(entry_id, f"#div-{entry_id}")),
                             Cell(entry.action if entry else "?"),
                             Cell(", ".join(_frameworks(r.get("framework") for r in seen or group))),
                             Cell(counted, "xpass" if outcomes["xpassed"] else "")])
    if summary_rows:
        blocks.append(Table(["entry", "action", "frameworks", "checks"], summary_rows, "divergences"))
    for entry_id in order:
        blocks.append(_divergence(entry_id, entries.get(entry_id), matched[entry_id]))
    present = {r.get("framework") for r in data.ran(data.records)}
    unmatched = [e for e in data.manifest if e.id not in matched and any(e.may_cover(f) for f in present)]
    if unmatched:
        blocks.append(Heading(3, "Entries that matched no check", "divergences-unmatched"))
        blocks.append(Para("These entries cover a framework that ran here but matched none of its checks: the "
                           "divergence may be gone at this version, or the entry's patterns no longer name a case.",
                           "note"))
        blocks.append(Bullets([[Code(e.id), f" ({e.action}, versions {e.versions or 'any'}): {_first_line(e.reason)}"]
                               for e in unmatched]))
    return blocks


def _pattern(value):
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def _seen(group):
    """The checks of a manifest entry that ran here, or that the entry itself skipped."""
    return [r for r in group if r["outcome"] != "skipped" or r.get("reason") == "manifest"]


def _divergence(entry_id, entry, group):
    blocks = [Heading(3, entry_id, f"div-{entry_id}")]
    if entry is not None:
        blocks.append(Para(entry.reason))
        facts = [[Strong("action:"), " ", f"{entry.action}" + (" (strict)" if entry.action == "xfail" else "")],
                 [Strong("versions:"), " ", entry.versions or "any"],
                 [Strong("matches:"), " ", Code(", ".join(f"{k}={_pattern(v)}" for k, v in entry.match.items()))]]
        if entry.observed:
            facts.append([Strong("observed (manifest):"), " ", entry.observed])
        if entry.link:
            facts.append([Strong("link:"), " ", Link(entry.link, entry.link)])
        blocks.append(Bullets(facts))
    else:
        blocks.append(Para("Not in the manifest read by this report (a different manifest produced the results).",
                           "note"))
    rows = []
    seen = _seen(group)
    for r in sorted(seen, key=lambda r: (_rank(r.get("framework"), FRAMEWORK_IDS), str(r["id"])))[:MAX_OBSERVED]:
        dtype = r.get("dtype")
        rows.append([Cell(Code(r.get("framework", ""))), Cell(r.get("case", "")), Cell(dtype), Cell(r.get("device")),
                     Cell(QUANTITY_LABELS.get(r.get("quantity"), r.get("quantity"))),
                     Cell(_summary(r.get("expected"), dtype)), Cell(_summary(r.get("actual"), dtype)),
                     Cell(ulp_text(_ulp(r)) or "-", "num"),
                     Cell(OUTCOME_WORDS[r["outcome"]], {"xpassed": "xpass", "xfailed": "known"}.get(r["outcome"], ""))])
    caption = f"Observed in this run ({len(seen)} check(s)"
    caption += f", first {MAX_OBSERVED} shown" if len(seen) > MAX_OBSERVED else ""
    caption += f"; {len(group) - len(seen)} more matched but did not run here)" if len(group) > len(seen) else ")"
    if not rows:
        return Section(blocks + [Para(caption.replace("Observed in this run", "Nothing observed"), "note")], "entry")
    blocks.append(Table(["framework", "case", "dtype", "device", "quantity", "expected", "actual", "ULP", "outcome"],
                        rows, "observed", caption))
    return Section(blocks, "entry")


def _failures(data):
    failures = data.failures
    blocks = [Heading(2, f"Failures ({len(failures)})", "failures")]
    if not failures:
        return blocks + [Para("None: every check that ran passed or is a known divergence.", "note")]
    blocks.append(Para(["Each failure with the input that reproduces it: the case file, the case, the framework, "
                        "the dtype and device, and a command that runs that single check (from the repository "
                        "root; ", Code("--require"), " makes a missing framework fail instead of skipping). "
                        "A fixed divergence (xpassed) means a manifest entry no longer applies: remove it or narrow "
                        "its versions."]))
    counts = Counter(r.get("framework") for r in failures)
    blocks.append(Para("By framework: " + ", ".join(f"{f} {counts[f]}" for f in _frameworks(counts))))
    shown = sorted(failures, key=lambda r: (_rank(r.get("framework"), FRAMEWORK_IDS), str(r["id"])))
    for r in shown[:MAX_FAILURES]:
        dtype = r.get("dtype")
        quantity = QUANTITY_LABELS.get(r.get("quantity"), r.get("quantity"))
        where = f" {r.get('framework_version') or ''} · {dtype} · {r.get('device')}"
        where += f" · variant {r['variant']}" if r.get("variant") else ""
        where += f" · options {r['options']}" if r.get("options") else ""
        error = (f"{ulp_text(_ulp(r)) or '-'} ULP, {r.get('max_abs_err', '-')} absolute; "
                 f"tolerance {_tolerance(r.get('tolerance'))}")
        facts = [[Strong("case:"), " ", Code(str(r.get("case"))), " in ", Code(case_file(r) or "?")],
                 [Strong("check:"), " ", f"{r.get('op')} · {quantity} · ", Code(str(r.get("framework"))), where],
                 [Strong("expected:"), " ", _summary(r.get("expected"), dtype)],
                 [Strong("actual:"), " ", _summary(r.get("actual"), dtype)],
                 [Strong("error:"), " ", error]]
        if r.get("modes"):
            facts.append([Strong("modes:"), " ", ", ".join(
                f"{mode} {'passed' if m['passed'] else 'failed'} ({ulp_text(_ulp(m)) or '-'} ULP)"
                for mode, m in r["modes"].items())])
        if r.get("manifest"):
            facts.append([Strong("manifest entry:"), " ", Link(r["manifest"], f"#div-{r['manifest']}")])
        blocks.append(Section([Heading(3, f"{r['outcome'].upper()} {r['id']}", ""), Bullets(facts),
                               Pre((r.get("message") or "").strip() or "(no message)"),
                               Para(Strong("Reproduce:")), Pre(reproduce_command(r), "command")], "failure"))
    if len(failures) > MAX_FAILURES:
        blocks.append(Para(f"... and {len(failures) - MAX_FAILURES} more (see the results file).", "note"))
    return blocks


def _tolerance(tol):
    if not isinstance(tol, dict):
        return "-"
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in tol.items())


def _skips(data):
    blocks = [Heading(2, "Skipped checks", "skipped")]
    skipped = [r for r in data.records if r["outcome"] == "skipped"]
    if not skipped:
        return blocks + [Para("None.", "note")]
    blocks.append(Para("Counted, never hidden: not-installed (the framework cannot be imported here), no-device "
                       "(no GPU), not-offered (no such function, dtype or autodiff), manifest (a skip entry)."))
    reasons = sorted({r.get("reason") or "?" for r in skipped})
    counts = Counter((r.get("framework"), r.get("reason") or "?") for r in skipped)
    rows = [[Cell(Code(f))] + [Cell(str(counts[(f, reason)]) if counts[(f, reason)] else "", "num")
                               for reason in reasons]
            + [Cell(str(sum(counts[(f, reason)] for reason in reasons)), "num")]
            for f in _frameworks(r.get("framework") for r in skipped)]
    blocks.append(Table(["framework"] + reasons + ["total"], rows, "skips"))
    return blocks


def build(env, records, sources=None, with_plots=True):
    """The report as a list of blocks."""
    from conformance.core import manifest as divergences

    manifest, manifest_error = [], ""
    try:
        manifest = divergences.load()
    except divergences.ManifestError as exc:
        manifest_error = str(exc)
    data = Data(env, records, sources, manifest, manifest_error)
    plots, why = None, "not requested"
    if with_plots:
        from conformance.report import plots as plot_module

        ok, why = plot_module.available()
        plots = plot_module if ok else None
    blocks = [Heading(1, "xent-conformance report", "top")]
    blocks += _environment(data) + _totals(data)
    blocks += _pictures(data, plots, why)
    blocks += _accuracy(data) + _matrix(data) + _divergences(data) + _failures(data) + _skips(data)
    return blocks


def render(env, records, fmt, output=None, sources=None, with_plots=True):
    """The report as text. For markdown with an output path, pictures are written beside it."""
    blocks = build(env, records, sources, with_plots)
    if fmt == "html":
        return to_html(blocks)
    return to_markdown(blocks, output)


# --- markdown -------------------------------------------------------------------------------

def _md_text(text):
    """Literal text in markdown: escape what GitHub would read as markup, and little else."""
    for char in "\\`*<|":
        text = text.replace(char, "\\" + char)
    text = re.sub(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", r"\\_", text)  # intraword _ is literal in GFM
    return re.sub(r"\](?=[(\[])", r"\\]", text)  # no [text](url) or [text][ref] by accident


def _md_inline(content):
    if isinstance(content, list):
        return "".join(_md_inline(c) for c in content)
    if isinstance(content, Code):
        fence = "``" if "`" in content.text else "`"
        pad = " " if fence == "``" else ""
        return f"{fence}{pad}{content.text}{pad}{fence}" if content.text else ""
    if isinstance(content, Link):
        return f"[{_md_text(content.text)}]({content.url})"
    if isinstance(content, Strong):
        return f"**{_md_text(content.text)}**"
    if isinstance(content, Cell):
        text = _md_inline(content.content)
        return text + (f" · {_md_text(content.sub)}" if content.sub else "")
    return _md_text(str(content if content is not None else ""))


def _md_cell(content):
    return _md_inline(content).replace("\n", " ").replace("|", "\\|") if not isinstance(content, Cell) else \
        _md_inline(content).replace("\n", " ")


def to_markdown(blocks, output=None):
    lines = []
    out_dir = Path(output).resolve().parent if output else None
    stem = Path(output).stem if output else ""
    for block in blocks:
        if isinstance(block, Heading):
            if block.anchor.startswith("div-"):  # the known-divergence summary links here
                lines += [f'<a id="{block.anchor}"></a>', ""]
            lines += ["#" * block.level + " " + _md_text(block.text), ""]
        elif isinstance(block, Para):
            lines += [_md_inline(block.content), ""]
        elif isinstance(block, Cards):
            lines += ["; ".join(f"**{n}** {label}" for n, label, _ in block.items), ""]
        elif isinstance(block, Bullets):
            lines += [f"- {_md_inline(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"*{_md_inline(block.caption)}*", ""]
            lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            for row in block.rows:
                cells = row[0] if isinstance(row, tuple) else row
                lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
            lines.append("")
        elif isinstance(block, Image):
            if out_dir is None:
                lines += [f"*Picture \"{block.alt}\" omitted: markdown pictures are written next to the file "
                          f"given with -o.*", ""]
                continue
            name = f"{stem}-{block.key}.png"
            (out_dir / name).write_bytes(block.png)
            lines += [f"![{block.alt}]({name})", ""]
            if block.caption:
                lines += [f"*{_md_inline(block.caption)}*", ""]
        elif isinstance(block, Pre):
            fence = "````" if "```" in block.text else "```"
            lines += [fence + "text", block.text, fence, ""]
        elif isinstance(block, Section):
            lines += to_markdown(block.blocks, output).rstrip("\n").splitlines() + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- HTML -----------------------------------------------------------------------------------

CSS = """
:root { --pass: #e8f5e9; --pass-ink: #1b5e20; --fail: #ffebee; --fail-ink: #b71c1c; --known: #f3e5f5;
  --known-ink: #6a1b9a; --xpass: #fff3e0; --xpass-ink: #e65100; --skip: #f5f5f5; --skip-ink: #9e9e9e;
  --line: #e0e0e0; --ink: #212121; --muted: #616161; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); margin: 0; background: #fafafa; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
nav { position: sticky; top: 0; z-index: 5; background: #263238; padding: 8px 32px; }
nav a { color: #eceff1; margin-right: 18px; text-decoration: none; font-size: 13px; }
nav a:hover { text-decoration: underline; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
h3 code, h2 code { font-size: inherit; }
p { margin: 6px 0 10px; max-width: 980px; }
p.note { color: var(--muted); font-style: italic; }
p.verdict { font-size: 15px; padding: 8px 12px; border-radius: 6px; display: inline-block; }
p.verdict.ok { background: var(--pass); color: var(--pass-ink); }
p.verdict.fail { background: var(--fail); color: var(--fail-ink); }
td code { white-space: nowrap; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f1f3f4;
  padding: 1px 4px; border-radius: 3px; }
pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #263238;
  color: #eceff1; padding: 10px 12px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
pre.command { white-space: pre; background: #102027; }
ul { margin: 4px 0 10px; padding-left: 22px; }
li { margin: 2px 0; }
a { color: #1565c0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 16px; min-width: 130px; background: white; }
.card b { display: block; font-size: 24px; }
.card span { color: var(--muted); font-size: 12px; }
.card.pass { background: var(--pass); border-color: #a5d6a7; }
.card.fail { background: var(--fail); border-color: #ef9a9a; color: var(--fail-ink); }
.card.known { background: var(--known); border-color: #ce93d8; }
.card.xpass { background: var(--xpass); border-color: #ffcc80; }
.card.skip { background: var(--skip); }
.scroll { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 12.5px; }
caption { caption-side: top; text-align: left; color: var(--muted); padding: 4px 0; font-style: italic; }
th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
th { background: #eceff1; text-align: left; font-weight: 600; }
tr.group td { border-top: 2px solid #b0bec5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.matrix td:nth-child(n+4), table.accuracy td:nth-child(n+3) { text-align: center; min-width: 84px;
  font-variant-numeric: tabular-nums; }
table.matrix th:nth-child(n+4), table.accuracy th:nth-child(n+3) { text-align: center; }
td .sub { display: block; font-size: 11px; opacity: 0.8; }
td.pass { background: var(--pass); color: var(--pass-ink); }
td.fail { background: var(--fail); color: var(--fail-ink); font-weight: 600; }
td.known { background: var(--known); color: var(--known-ink); }
td.xpass { background: var(--xpass); color: var(--xpass-ink); font-weight: 600; }
td.skip { background: var(--skip); color: var(--skip-ink); }
td.u0 { background: #e8f5e9; } td.u1 { background: #c8e6c9; } td.u2 { background: #fff9c4; }
td.u3 { background: #ffe0b2; } td.u4 { background: #ffab91; } td.u5 { background: #e57373; color: white; }
td.fail.u0, td.fail.u1, td.fail.u2, td.fail.u3, td.fail.u4 { outline: 2px solid #c62828; outline-offset: -2px; }
.legend span { display: inline-block; padding: 1px 8px; margin: 0 4px 4px 0; border-radius: 3px; font-size: 12px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; max-width: 980px; }
section.entry, section.failure { border: 1px solid var(--line); border-left: 4px solid #ab47bc; border-radius: 6px;
  padding: 4px 16px 10px; margin: 14px 0; }
section.failure { border-left-color: #c62828; }
section h3 { margin-top: 10px; }
"""

LEGENDS = {
    "matrix": [("pass", "passed"), ("known", "known divergence"), ("xpass", "fixed divergence"),
               ("fail", "failed / error"), ("skip", "nothing ran")],
    "accuracy": [("u0", "0"), ("u1", "≤ 1"), ("u2", "≤ 4"), ("u3", "≤ 16"), ("u4", "≤ 1000"),
                 ("u5", "> 1000 ULP")],
}


def _html_inline(content):
    if isinstance(content, list):
        return "".join(_html_inline(c) for c in content)
    if isinstance(content, Code):
        return f"<code>{html.escape(content.text)}</code>" if content.text else ""
    if isinstance(content, Link):
        return f'<a href="{html.escape(content.url)}">{html.escape(content.text)}</a>'
    if isinstance(content, Strong):
        return f"<strong>{html.escape(content.text)}</strong>"
    return html.escape(str(content if content is not None else ""))


def _html_cell(cell, tag="td"):
    if not isinstance(cell, Cell):
        cell = Cell(cell)
    attrs = ""
    if cell.cls:
        attrs += f' class="{html.escape(cell.cls)}"'
    if cell.title:
        attrs += f' title="{html.escape(cell.title)}"'
    sub = f'<span class="sub">{html.escape(cell.sub)}</span>' if cell.sub else ""
    return f"<{tag}{attrs}>{_html_inline(cell.content)}{sub}</{tag}>"


def _html_blocks(blocks):
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            out.append(f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            cls = f' class="{block.cls}"' if block.cls else ""
            out.append(f"<p{cls}>{_html_inline(block.content)}</p>")
        elif isinstance(block, Cards):
            out.append('<div class="cards">' + "".join(
                f'<div class="card {cls}"><b>{n}</b><span>{html.escape(label)}</span></div>'
                for n, label, cls in block.items) + "</div>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            legend = LEGENDS.get(block.cls)
            if legend:
                out.append('<div class="legend">' + "".join(
                    f'<span class="{cls}" style="background: var(--{cls}, transparent)">{html.escape(label)}</span>'
                    if block.cls == "matrix" else
                    f'<span style="{_legend_style(cls)}">{html.escape(label)}</span>'
                    for cls, label in legend) + "</div>")
            parts = [f'<div class="scroll"><table class="{block.cls}">']
            if block.caption:
                parts.append(f"<caption>{_html_inline(block.caption)}</caption>")
            parts.append("<thead><tr>" + "".join(_html_cell(h, "th") for h in block.header) + "</tr></thead><tbody>")
            for row in block.rows:
                cells, row_cls = row if isinstance(row, tuple) else (row, "")
                cls = f' class="{row_cls}"' if row_cls else ""
                parts.append(f"<tr{cls}>" + "".join(_html_cell(c) for c in cells) + "</tr>")
            parts.append("</tbody></table></div>")
            out.append("".join(parts))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            caption = f"<figcaption>{_html_inline(block.caption)}</figcaption>" if block.caption else ""
            out.append(f'<figure><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
                       f"{caption}</figure>")
        elif isinstance(block, Pre):
            cls = f' class="{block.cls}"' if block.cls else ""
            out.append(f"<pre{cls}>{html.escape(block.text)}</pre>")
        elif isinstance(block, Section):
            out.append(f'<section class="{block.cls}">' + _html_blocks(block.blocks) + "</section>")
    return "\n".join(out)


_LEGEND_COLOURS = {"u0": "#e8f5e9", "u1": "#c8e6c9", "u2": "#fff9c4", "u3": "#ffe0b2", "u4": "#ffab91",
                   "u5": "#e57373; color: white"}


def _legend_style(cls):
    return f"background: {_LEGEND_COLOURS.get(cls, 'transparent')}"


def to_html(blocks):
    nav = "".join(f'<a href="#{html.escape(b.anchor)}">{html.escape(b.text.split(" (")[0].split(":")[0])}</a>'
                  for b in blocks if isinstance(b, Heading) and b.level == 2 and b.anchor)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>xent-conformance report</title><style>{CSS}</style></head>\n<body>"
            f"<nav>{nav}</nav><main>\n{_html_blocks(blocks)}\n</main></body></html>\n")

