"""What moved between two results files, and whether it is a regression.

A regression (exit 1): a check that passed or xfailed in BASE is failed, error, skipped or
missing in NEW, or a check that passes in both runs only because its tolerance was loosened:
its error grew past BASE's tolerance (in ULPs) while NEW's tolerance is wider.

Reported without failing: an error that grew within tolerance (error-grew), a known
divergence that no longer diverges (fixed-divergence: xfailed -> xpassed or passed; the gate
and the run fail on the xpass, so the manifest gets updated), a check that now matches a
known divergence (new-divergence), a check that matched another manifest entry
(manifest-changed), other outcome changes, and checks only NEW has (new).

Kinds of change: now-failing, now-skipped, missing, error-grew, fixed-divergence,
new-divergence, manifest-changed, skip-reason, outcome, new.
"""
from collections import defaultdict
from typing import NamedTuple

from conformance import FRAMEWORK_IDS
from conformance.results.records import read_number

GOOD = ("passed", "xfailed")
BAD = ("failed", "error", "skipped")


class Change(NamedTuple):
    kind: str
    id: str
    detail: str
    regression: bool
    framework: str = "?"
    before: dict | None = None  # {outcome, max_ulp_err, reason, manifest} in BASE (None when absent)
    after: dict | None = None  # the same in NEW


def _ulp(record):
    return read_number(record.get("max_ulp_err"))


def _state(record):
    if record is None:
        return None
    return {"outcome": record["outcome"], "max_ulp_err": record.get("max_ulp_err"),
            "reason": record.get("reason"), "manifest": record.get("manifest")}


def _last_line(message):
    lines = (message or "").strip().splitlines()
    return lines[-1] if lines else ""


def _tolerance_ulp(record):
    tolerance = record.get("tolerance")
    return read_number(tolerance.get("ulp")) if isinstance(tolerance, dict) else None


def _loosened(old, now):
    """Which tolerance terms NEW widened compared with BASE, as 'ulp 4 -> 8'; empty when none."""
    before, after = old.get("tolerance"), now.get("tolerance")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    terms = {key: (read_number(before.get(key)), read_number(after.get(key))) for key in ("ulp", "abs", "rel")}
    wider = [f"{key} {old:.3g} -> {new:.3g}" for key, (old, new) in terms.items()
             if old is not None and new is not None and new > old * (1 + 1e-12)]
    return ", ".join(wider)


def _outcome_change(old, now):
    before, after = old["outcome"], now["outcome"]
    detail = f"{before} -> {after}"
    why = now.get("reason") if after == "skipped" else _last_line(now.get("message"))
    if after == "skipped" and now.get("message"):
        why = f"[{now.get('reason') or '?'}] {_last_line(now['message'])}"
    if why:
        detail += ": " + why
    if before in GOOD and after in ("failed", "error"):
        return "now-failing", detail, True
    if before in GOOD and after == "skipped":
        return "now-skipped", detail, True
    if before == "xfailed" and after in ("xpassed", "passed"):
        return "fixed-divergence", detail, False
    if after == "xfailed" and now.get("manifest"):
        detail = f"{before} -> xfailed (manifest entry {now['manifest']})"
        return "new-divergence", detail, False
    return "outcome", detail, False


def diff(base_records, new_records):
    """The changes from BASE to NEW, as Change tuples (kind, id, detail, regression, ...)."""
    base = {r["id"]: r for r in base_records}
    new = {r["id"]: r for r in new_records}
    changes = []
    for check_id, old in sorted(base.items()):
        framework = old.get("framework", "?")
        now = new.get(check_id)
        if now is None:
            changes.append(Change("missing", check_id, f"was {old['outcome']}; not in NEW", old["outcome"] in GOOD,
                                  framework, _state(old), None))
            continue
        if old["outcome"] != now["outcome"]:
            kind, detail, regression = _outcome_change(old, now)
            changes.append(Change(kind, check_id, detail, regression, framework, _state(old), _state(now)))
        elif old["outcome"] == "xfailed" and old.get("manifest") != now.get("manifest"):
            changes.append(Change("manifest-changed", check_id,
                                  f"manifest entry {old.get('manifest')} -> {now.get('manifest')}", False, framework,
                                  _state(old), _state(now)))
        elif old["outcome"] == "passed":
            before, after = _ulp(old), _ulp(now)
            if before is not None and after is not None and after > before:
                detail = f"max ULP error {before:.3g} -> {after:.3g}"
                regression = False
                loosened = _loosened(old, now)
                allowed = _tolerance_ulp(old)
                if loosened and allowed is not None and after > allowed:
                    regression = True
                    detail += f", past BASE's tolerance of {allowed:.3g} ULP; the tolerance was loosened ({loosened})"
                changes.append(Change("error-grew", check_id, detail, regression, framework, _state(old), _state(now)))
        elif old["outcome"] == "skipped" and old.get("reason") != now.get("reason"):
            detail = f"skipped ({old.get('reason')}) -> skipped ({now.get('reason')})"
            changes.append(Change("skip-reason", check_id, detail, False, framework, _state(old), _state(now)))
    for check_id in sorted(set(new) - set(base)):
        now = new[check_id]
        changes.append(Change("new", check_id, now["outcome"], False, now.get("framework", "?"), None, _state(now)))
    return changes


def versions(base_env, new_env):
    """Framework versions that differ between the two environments: [(framework, before, after)]."""
    before = (base_env or {}).get("frameworks", {}) or {}
    after = (new_env or {}).get("frameworks", {}) or {}
    moved = []
    for name in sorted(set(before) | set(after)):
        old = (before.get(name) or {}).get("version")
        new = (after.get(name) or {}).get("version")
        if old != new:
            moved.append((name, old, new))
    return moved


SHOWN = 25  # non-regression changes listed per framework; every regression is listed


def summary(changes, moved=()):
    """(text, regressed): a short human summary grouped by framework, regressions first.

    Every regression is listed. Other changes are listed up to SHOWN per framework, and checks
    that only NEW has are counted by outcome (listed only when they fail); `--json PATH`
    writes them all.
    """
    regressions = [c for c in changes if c.regression]
    lines = [f"{len(regressions)} regression(s), {len(changes)} change(s)"]
    for name, old, new in moved:
        lines.append(f"  version  {name}: {old or 'not installed'} -> {new or 'not installed'}")
    by_framework = defaultdict(list)
    for change in changes:
        by_framework[change.framework].append(change)
    order = {f: i for i, f in enumerate(FRAMEWORK_IDS)}
    for framework in sorted(by_framework, key=lambda f: (-sum(c.regression for c in by_framework[f]),
                                                          order.get(f, len(order)), f)):
        group = by_framework[framework]
        kinds = defaultdict(int)
        for change in group:
            kinds[change.kind] += 1
        counted = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        lines.append("")
        regressed = sum(c.regression for c in group)
        lines.append(f"{framework}: {regressed} regression(s), {len(group)} change(s) ({counted})")
        shown = [c for c in group if c.regression]
        others = [c for c in group if not c.regression and
                  (c.kind != "new" or (c.after or {}).get("outcome") in ("failed", "error", "xpassed"))]
        shown += sorted(others, key=lambda c: (c.kind, c.id))[:SHOWN]
        for change in shown:
            lines.append(f"  {'REGRESSION' if change.regression else 'changed':10s} {change.kind:16s} {change.id}  "
                         f"{change.detail}")
        if len(others) > SHOWN:
            lines.append(f"  ... and {len(others) - SHOWN} more change(s): --json PATH writes them all")
        new = defaultdict(int)
        for change in group:
            if change.kind == "new":
                new[(change.after or {}).get("outcome", "?")] += 1
        if new:
            lines.append(f"  {sum(new.values())} check(s) only in NEW: "
                         + ", ".join(f"{n} {outcome}" for outcome, n in sorted(new.items())))
    if not changes:
        lines.append("nothing moved")
    return "\n".join(lines), bool(regressions)


def as_json(changes, moved=()):
    """The machine-readable form written by `diff --json PATH`."""
    by_framework = defaultdict(lambda: {"regressions": 0, "changes": 0})
    for change in changes:
        by_framework[change.framework]["changes"] += 1
        by_framework[change.framework]["regressions"] += int(change.regression)
    return {
        "regressions": sum(c.regression for c in changes),
        "versions": [{"framework": n, "before": old, "after": new} for n, old, new in moved],
        "by_framework": dict(sorted(by_framework.items())),
        "changes": [{"kind": c.kind, "id": c.id, "framework": c.framework, "detail": c.detail,
                     "regression": c.regression, "before": c.before, "after": c.after} for c in changes],
    }
