"""The failures section: every failed, error and xpassed check, with the command that reruns it."""
from collections import Counter

from conformance.report.blocks import Block, Bullets, Code, Heading, Link, Para, Pre, Section, Strong
from conformance.report.layouts import layout_text
from conformance.report.model import (ReportData, array_summary, by_framework_then_id, quantity_label,
                                      record_ulp, short_number, sorted_frameworks, ulp_text)
from conformance.report.reproduce import PROCESS, case_file, reproduce_command

MAX_FAILURES = 200  # listed one by one; the rest are counted


def failures(data: ReportData) -> list[Block]:
    failing = data.failures
    blocks: list[Block] = [Heading(2, f"Failures ({len(failing)})", "failures")]
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
    facts = _process_facts(r) if r.get("kind") == PROCESS else _check_facts(r)
    if r.get("manifest"):
        facts.append([Strong("manifest entry:"), " ", Link(r["manifest"], f"#div-{r['manifest']}")])
    return Section([Heading(3, f"{r['outcome'].upper()} {r['id']}", ""), Bullets(facts),
                    Pre((r.get("message") or "").strip() or "(no message)"),
                    Para(Strong("Reproduce:")), Pre(reproduce_command(r), "command")], "failure")


def _process_facts(r: dict) -> list:
    """A pytest process of `run` that died, hung or exited abnormally: it stands for its checks."""
    status = r.get("exit_status")
    ended = "killed for running past --process-timeout" if status is None else f"exit status {status}"
    ended += f" ({r['signal']})" if r.get("signal") else ""
    written = r.get("results_written")
    return [[Strong("process:"), " ", Code(str(r.get("process"))), f" · {r.get('reason') or '?'} · {ended}"],
            [Strong("checks of:"), " ", Code(str(r.get("framework")))],
            [Strong("results written:"), " ", "none" if written is None else str(written)]]


def _check_facts(r: dict) -> list:
    """A check: its case and file, framework and where it ran, the values, the error, its modes."""
    dtype = r.get("dtype")
    quantity = quantity_label(r.get("quantity"))
    where = f" {r.get('framework_version') or ''} · {dtype} · {r.get('device')}"
    where += f" · variant {r['variant']}" if r.get("variant") else ""
    where += f" · options {r['options']}" if r.get("options") else ""
    where += f" · layout {layout_text(r['layout'])}" if layout_text(r.get("layout")) else ""
    error = (f"{ulp_text(record_ulp(r)) or '-'} ULP, {short_number(r.get('max_abs_err'))} absolute; "
             f"tolerance {_tolerance(r.get('tolerance'))}")
    facts = [[Strong("case:"), " ", Code(str(r.get("case"))), " in ", Code(case_file(r) or "?")],
             [Strong("check:"), " ", f"{r.get('op')} · {quantity} · ", Code(str(r.get("framework"))), where],
             [Strong("expected:"), " ", array_summary(r.get("expected"), dtype)],
             [Strong("actual:"), " ", array_summary(r.get("actual"), dtype)],
             [Strong("error:"), " ", error]]
    if r.get("modes"):
        facts.append([Strong("modes:"), " ", ", ".join(_mode(name, m) for name, m in r["modes"].items())])
    return facts


def _mode(name: str, mode: dict) -> str:
    """'jit failed (1,700 ULP)', or what the mode raised (newer records hold its own outcome)."""
    outcome = mode.get("outcome") or ("passed" if mode.get("passed") else "failed")
    if mode.get("raised"):
        return f"{name} {outcome}, raised {mode['raised']}"
    return f"{name} {outcome} ({ulp_text(record_ulp(mode)) or '-'} ULP)"


def _tolerance(tol: object) -> str:
    if not isinstance(tol, dict):
        return "-"
    return ", ".join(f"{k} {short_number(v)}" for k, v in tol.items()) or "-"
