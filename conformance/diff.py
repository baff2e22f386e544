"""What moved between two results files, and whether it is a regression.

A regression: a check that passed or xfailed in BASE is failed, error, skipped or missing in
NEW, or a passing check whose error grew past its tolerance.
"""
GOOD = ("passed", "xfailed")
BAD = ("failed", "error", "skipped")


def _ulp(record):
    value = record.get("max_ulp_err")
    return float(value) if isinstance(value, (int, float)) else None


def diff(base_records, new_records):
    base = {r["id"]: r for r in base_records}
    new = {r["id"]: r for r in new_records}
    changes = []  # (kind, id, detail, regression)
    for check_id, old in sorted(base.items()):
        now = new.get(check_id)
        if now is None:
            changes.append(("missing", check_id, f"was {old['outcome']}", old["outcome"] in GOOD))
            continue
        if old["outcome"] != now["outcome"]:
            regression = old["outcome"] in GOOD and now["outcome"] in BAD
            detail = f"{old['outcome']} -> {now['outcome']}"
            if now.get("message"):
                detail += ": " + now["message"].splitlines()[-1]
            kind = "fixed-divergence" if old["outcome"] == "xfailed" and now["outcome"] in ("xpassed", "passed") else "outcome"
            changes.append((kind, check_id, detail, regression))
        elif old["outcome"] == "passed":
            before, after = _ulp(old), _ulp(now)
            if before is not None and after is not None and after > before:
                changes.append(("error-grew", check_id, f"max ULP error {before:.3g} -> {after:.3g}", False))
    for check_id in sorted(set(new) - set(base)):
        changes.append(("new", check_id, new[check_id]["outcome"], False))
    return changes


def summary(changes):
    regressions = [c for c in changes if c[3]]
    lines = [f"{len(regressions)} regression(s), {len(changes)} change(s)"]
    for kind, check_id, detail, regression in changes:
        lines.append(f"{'REGRESSION' if regression else 'changed':10s} {kind:16s} {check_id}  {detail}")
    return "\n".join(lines), bool(regressions)
