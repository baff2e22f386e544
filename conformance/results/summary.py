"""The summary matrix a person reads first: op x framework, outcomes counted."""
from collections import Counter, defaultdict

from conformance.frameworks import order_key

ABBREVIATIONS = {"passed": "P", "failed": "F", "error": "E", "xfailed": "K", "xpassed": "X", "skipped": "S"}
LEGEND = ("P passed, F failed, E error, K known divergence (xfail), X fixed divergence (strict xpass), "
          "S skipped; '-' the framework does not offer the op")


def cell(counter):
    ran = {k: v for k, v in counter.items() if k != "skipped"}
    if not ran:
        return "-" if counter.get("skipped") else ""
    in_order = sorted(ran.items(), key=lambda kv: "PFEKXS".index(ABBREVIATIONS[kv[0]]))
    return " ".join(f"{n}{ABBREVIATIONS[o]}" for o, n in in_order)


def build(records):
    table = defaultdict(Counter)
    for record in records:
        table[(record["op"], record["framework"])][record["outcome"]] += 1
    frameworks = sorted({r["framework"] for r in records}, key=order_key)  # plug-ins too, never dropped
    ops = sorted({r["op"] for r in records})
    return ops, frameworks, table


def render_text(records):
    ops, frameworks, table = build(records)
    width = max([len(op) for op in ops] + [2])
    cols = [max(len(f), 8) for f in frameworks]
    lines = [" " * width + "  " + "  ".join(f.ljust(c) for f, c in zip(frameworks, cols))]
    for op in ops:
        cells = [cell(table[(op, f)]).ljust(c) for f, c in zip(frameworks, cols)]
        lines.append(op.ljust(width) + "  " + "  ".join(cells))
    lines.append(LEGEND)
    return "\n".join(lines + counts(records))


def counts(records):
    """Lines counting outcomes, and skips by framework and reason: no skip goes unseen."""
    outcomes = Counter(r["outcome"] for r in records)
    lines = [f"{len(records)} checks: " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))]
    reasons = Counter((r["framework"], r["reason"]) for r in records if r["outcome"] == "skipped")
    if reasons:
        lines.append("skipped, by framework and reason:")
        lines += [f"  {n:6d}  {f:17s} {reason}" for (f, reason), n in sorted(reasons.items())]
    return lines + refusals(records) + modes(records) + compilations(records)


def refusals(records):
    """Who refuses undefined input (outside the classes or [0, 1]) and how: raised, NaN, or not."""
    how = defaultdict(Counter)
    for record in records:
        if record.get("refused"):
            how[record["refused"]][record["framework"]] += 1
        elif record.get("undefined") and record["outcome"] in ("failed", "xfailed"):
            how["accepted (a finite number)"][record["framework"]] += 1
    return [f"undefined input {kind}: " + ", ".join(f"{f} ({n})" for f, n in sorted(counter.items()))
            for kind, counter in sorted(how.items())]


def modes(records):
    """Where a framework ran each call several ways (JAX: jit and eager), how often they differ."""
    by_framework = defaultdict(list)
    for record in records:
        if record.get("modes"):
            by_framework[record["framework"]].append(record["modes"])
    lines = []
    for framework, runs in sorted(by_framework.items()):
        names = sorted({name for run in runs for name in run})
        differ = [run for run in runs if len({str(m.get("max_ulp_err")) for m in run.values()}) > 1]
        split = [run for run in runs if len({m.get("passed") for m in run.values()}) > 1]
        rejected = [run for run in runs if any(m.get("same_as_eager") is False for m in run.values())]
        lines.append(f"{framework} ran {' and '.join(names)}: ULP errors differ in {len(differ)} of {len(runs)} "
                     f"checks, the verdict in {len(split)}; the relative view (torch._dynamo.utils.same) "
                     f"rejects {len(rejected)}")
    return lines


def compilations(records):
    """How many compilations each framework's compiled modes made in this run, and the time of
    the calls that made them: what a warm cache saves (compiles.py counts them)."""
    made = defaultdict(lambda: [0, 0.0])
    for record in records:
        for mode, grown in (record.get("compiles") or {}).items():
            entry = made[(record["framework"], mode)]
            entry[0] += int(grown.get("count", 0))
            entry[1] += float(grown.get("seconds", 0.0))
    if not made:
        return []
    total = sum(seconds for _, seconds in made.values())
    return [f"compilations ({total:.1f} s in all): " + ", ".join(
        f"{framework} {mode} {count} ({seconds:.1f} s)"
        for (framework, mode), (count, seconds) in sorted(made.items(), key=lambda kv: -kv[1][1]))]
