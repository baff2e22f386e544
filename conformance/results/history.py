"""Results kept across runs: how a check moved as framework versions changed.

Each `run` keeps a copy of its merged results under results/history/, named by the date and
the versions of the frameworks it checked; `xent-conformance history PATTERN` shows a check's
outcome and ULP error across the runs kept (plain JSON files: nothing to install, and any
other tool, DuckDB included, can read them too).
"""
from __future__ import annotations

import fnmatch
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from conformance.results import records as results

DEFAULT_DIR = "results/history"  # where `run` keeps them unless told otherwise
MAIN_PACKAGES = ("torch", "jax", "optax", "tensorflow", "keras", "tf-keras", "numpy")


def run_name(environment: dict, when: datetime | None = None) -> str:
    """<UTC date and time>--<package>-<version>... for the main packages the run recorded."""
    when = when or datetime.now(timezone.utc)
    versions: dict[str, str] = {}
    for info in (environment.get("frameworks") or {}).values():
        versions.update((info or {}).get("packages") or {})
    parts = [f"{name}-{versions[name]}" for name in MAIN_PACKAGES if name in versions]
    label = re.sub(r"[^A-Za-z0-9.+_-]", "_", "-".join(parts)) or "no-versions"
    return f"{when.strftime('%Y-%m-%dT%H%M%SZ')}--{label}"


def keep(merged: Path, history_dir: Path) -> Path:
    """Copy a merged results file into the history folder; its new path."""
    document = results.read(merged)
    history_dir.mkdir(parents=True, exist_ok=True)
    target = history_dir / f"{run_name(document.get('environment') or {})}.json"
    shutil.copyfile(merged, target)
    return target


def table(history_dir: Path, pattern: str) -> list[tuple[str, str, str, object]]:
    """(run, check id, outcome, max ULP error) for every kept run and matching check, oldest first."""
    if not history_dir.is_dir():
        raise results.ResultsError(f"{history_dir}: no results history here (each `run` keeps one)")
    files = sorted(history_dir.glob("*.json"))
    if not files:
        raise results.ResultsError(f"{history_dir}: no results files")
    rows = []
    for path in files:
        for record in results.read(path)["results"]:
            if fnmatch.fnmatchcase(record["id"], pattern):
                rows.append((path.stem, record["id"], record["outcome"], record.get("max_ulp_err")))
    return rows


def render(rows) -> str:
    if not rows:
        return "no check in the history matches"
    by_check: dict[str, list] = {}
    for run, check, outcome, ulp in rows:
        by_check.setdefault(check, []).append((run, outcome, ulp))
    lines = []
    for check, runs in by_check.items():
        lines.append(check)
        for run, outcome, ulp in runs:
            shown = "-" if ulp is None else (f"{ulp:.3g}" if isinstance(ulp, float) else str(ulp))
            lines.append(f"  {run:60s} {outcome:8s} {shown:>10s} ULP")
    return "\n".join(lines)
