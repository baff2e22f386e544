"""Markdown and HTML reports of a results file."""
import html
from collections import defaultdict

from conformance import matrix


def _accuracy(records):
    """Max observed ULP error per framework x op x dtype, over checks that ran and compared."""
    worst = defaultdict(float)
    for r in records:
        if r["kind"] == "reference" and isinstance(r.get("max_ulp_err"), (int, float)) and r["outcome"] == "passed":
            key = (r["framework"], r["op"], r["dtype"], r["quantity"])
            worst[key] = max(worst[key], r["max_ulp_err"])
    return worst


def render(env, records, fmt):
    lines = ["# xent-conformance report", ""]
    lines.append(f"Date: {env.get('date', '?')}; Python {env.get('python', '?')}; {env.get('platform', '')}")
    lines.append("")
    lines.append("| framework | version | devices | backend |")
    lines.append("|---|---|---|---|")
    for name, info in sorted(env.get("frameworks", {}).items()):
        lines.append(f"| {name} | {info.get('version') or 'unavailable'} | {', '.join(info.get('devices', []))} | {info.get('backend', '')} |")
    lines += ["", "## Matrix (op x framework)", "", "```", matrix.render_text(records), "```", ""]
    lines += ["## Accuracy: max ULP error of passing checks", "", "| framework | op | dtype | quantity | max ULP |", "|---|---|---|---|---|"]
    for (f, op, dtype, q), ulps in sorted(_accuracy(records).items()):
        lines.append(f"| {f} | {op} | {dtype} | {q} | {ulps:.3g} |")
    lines += ["", "## Known divergences", ""]
    for r in records:
        if r["outcome"] == "xfailed":
            lines.append(f"- `{r['id']}`: {r['message']}")
    failures = [r for r in records if r["outcome"] in ("failed", "error", "xpassed")]
    lines += ["", f"## Failures ({len(failures)})", ""]
    for r in failures:
        lines.append(f"- `{r['id']}` ({r['file']}): {r['message']}")
    text = "\n".join(lines) + "\n"
    if fmt == "md":
        return text
    return ("<!doctype html><html><head><meta charset='utf-8'><title>xent-conformance report</title></head>"
            f"<body><pre>{html.escape(text)}</pre></body></html>\n")
