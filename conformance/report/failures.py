"""The failures section: every failed, error and xpassed check, with the command that reruns it."""
from collections import Counter

from conformance.report.blocks import Bullets, Code, Heading, Link, Para, Pre, Section, Strong
from conformance.report.model import (QUANTITY_LABELS, ReportData, array_summary, by_framework_then_id, record_ulp,
                                      sorted_frameworks, ulp_text)
from conformance.report.reproduce import case_file, reproduce_command

MAX_FAILURES = 200  # listed one by one; the rest are counted


def failures(data: ReportData) -> list:
    failing = data.failures
    blocks = [Heading(2, f"Failures ({len(failing)})", "failures")]
    if not failing:
        return blocks + [Para("None: every check that ran passed or is a known divergence.", "note")]
    blocks.append(Para(["Each failure with the input that reproduces it: the case file, the case, the framework, "
                        "the dtype and device, and a command that runs that single check (from the repository "
                        "root; ", Code("--require"), " makes a missing framework fail instead of skipping). "
                        "A fixed divergence (xpassed) means a manifest entry no longer applies: remove it or narrow "
                        "its versions."]))
    counts = Counter(r.get("framework") for r in failing)
    blocks.append(Para("By framework: " + ", ".join(f"{f} {counts[f]}" for f in sorted_frameworks(counts))))
    blocks += [_failure(r) for r in by_framework_then_id(failing)[:MAX_FAILURES]]
    if len(failing) > MAX_FAILURES:
        blocks.append(Para(f"... and {len(failing) - MAX_FAILURES} more (see the results file).", "note"))
    return blocks


def _failure(r: dict) -> Section:
    """One failed check: its input, what was expected and returned, the message, how to rerun it."""
    dtype = r.get("dtype")
    quantity = QUANTITY_LABELS.get(r.get("quantity"), r.get("quantity"))
    where = f" {r.get('framework_version') or ''} · {dtype} · {r.get('device')}"
    where += f" · variant {r['variant']}" if r.get("variant") else ""
    where += f" · options {r['options']}" if r.get("options") else ""
    error = (f"{ulp_text(record_ulp(r)) or '-'} ULP, {r.get('max_abs_err', '-')} absolute; "
             f"tolerance {_tolerance(r.get('tolerance'))}")
    facts = [[Strong("case:"), " ", Code(str(r.get("case"))), " in ", Code(case_file(r) or "?")],
             [Strong("check:"), " ", f"{r.get('op')} · {quantity} · ", Code(str(r.get("framework"))), where],
             [Strong("expected:"), " ", array_summary(r.get("expected"), dtype)],
             [Strong("actual:"), " ", array_summary(r.get("actual"), dtype)],
             [Strong("error:"), " ", error]]
    if r.get("modes"):
        facts.append([Strong("modes:"), " ", ", ".join(
            f"{mode} {'passed' if m['passed'] else 'failed'} ({ulp_text(record_ulp(m)) or '-'} ULP)"
            for mode, m in r["modes"].items())])
    if r.get("manifest"):
        facts.append([Strong("manifest entry:"), " ", Link(r["manifest"], f"#div-{r['manifest']}")])
    return Section([Heading(3, f"{r['outcome'].upper()} {r['id']}", ""), Bullets(facts),
                    Pre((r.get("message") or "").strip() or "(no message)"),
                    Para(Strong("Reproduce:")), Pre(reproduce_command(r), "command")], "failure")


def _tolerance(tol: object) -> str:
    if not isinstance(tol, dict):
        return "-"
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in tol.items())
