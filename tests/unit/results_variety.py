"""A results file with the full matrix's variety, generated from a seed (no committed fixture).

Every framework id (the built-in ones and a plug-in's), every quantity, outcome, dtype and
device, and every form a number takes in a results file (a float, an int, "inf", "-inf",
"nan", null; with odd=True also strings that are no number) in every numeric field: the
errors, the tolerance, the array summaries, each mode's errors, a golden's numbers, seconds.
Beside the checks, the error records that stand for a pytest process of `run` that died or
hung (kind "process": no case, quantity or dtype).
The records start from the runner's own (conformance/core/runner.py: base_record,
results.summarize), so their keys follow it; then their numbers are replaced.

    python -m tests.unit.results_variety OUT.json [SEED]      # write one, to look at it
"""
from __future__ import annotations

import itertools
import random
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from conformance import frameworks
from conformance.core import checks, manifest, runner
from conformance.core.failure_kinds import KINDS
from conformance.core.goldens import VERDICTS
from conformance.results import records as results
from reference.dtypes import FLOAT_DTYPES
from reference.registry import OPS

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "example-kernel"
FRAMEWORKS = (*frameworks.BUILTIN_IDS, PLUGIN)
# What a numeric field may hold: number() writes NaN and infinities as strings, absent is null.
NUMBER_FORMS = (0.0, 0, 3, 1.5, 2.5e-9, 1700.0, 3.2e7, "inf", "-inf", "nan", None)
ODD_FORMS = ("", "n/a")  # strings where a number is absent: an older or a foreign writer
MODES = {"torch": ("eager", "compile"), "jax": ("eager", "jit"), "tensorflow": ("eager", "function", "xla"),
         "keras-tensorflow": ("eager", "jit"), "keras-jax": ("eager", "jit"), "keras-torch": ("eager", "jit"),
         "keras-numpy": ("eager", "jit"), "tinygrad": ("eager", "jit"), "paddle": ("jit", "to_static"),
         "mlx": ("eager", "compile")}  # paddle's lack eager: modes with no eager to compare with
SKIP_REASONS = ("not-installed", "no-device", "not-offered", "manifest", "inexact-golden")
ERROR_REASONS = ("raised", "adapter-error", "wrong-device", "not-installed")
CASE_WORDS = ("logits-small", "probs-edge", "sparse-offset-1e4", "article-example", "masked-rows", "vocab-32001")


class Forms:
    """The value forms, each field through every one of them first (so a few records cover
    them all), then at random."""

    def __init__(self, rng: random.Random, odd: bool):
        self.rng = rng
        self.forms = NUMBER_FORMS + (ODD_FORMS if odd else ())
        self.used = defaultdict(int)
        self.seen = defaultdict(set)  # field -> repr of each form it got (what the tests check)

    def __call__(self, field: str, realistic: float) -> object:
        n = self.used[field]
        self.used[field] += 1
        if n < len(self.forms):
            value = self.forms[n]
        elif self.rng.random() < 0.6:
            value = realistic
        else:
            value = self.rng.choice(self.forms)
        self.seen[field].add(form_of(value))
        return value


def form_of(value: object) -> str:
    """The form of a value: 'float', 'int', 'None' or the string itself."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    return "int" if isinstance(value, int) else "float"


def _summary(forms: Forms, rng: random.Random, field: str, dtype: str | None) -> dict:
    # whole values up to 16 elements only; a field's first summary holds 16, so every form in one
    shape = [4, 4] if not forms.used[f"{field}.values"] else rng.choice(([2], [3, 4], [], [64, 17], [0]))
    summary = results.summarize(np.asarray(rng.random(), np.float64) * np.ones(shape), dtype,
                                (1,) * len(shape) if all(s > 1 for s in shape) else None)
    if "worst" in summary:
        summary["worst"] = forms(f"{field}.worst", summary["worst"])
    if "values" in summary:
        summary["values"] = [forms(f"{field}.values", v) for v in summary["values"]]
    return summary


def _check(framework: str, quantity: str, dtype: str, device: str, case: str, op: str, pinned: bool,
           undefined: bool, path: str | None):
    """What runner.base_record reads from a check."""
    options = {} if undefined else {"reduction": "mean"} if pinned else {"reduction": "none", "label_smoothing": 0.1}
    case_ns = SimpleNamespace(name=case, op=op, options=options, path=path, undefined=undefined)
    pinned_ns = SimpleNamespace(source="the article, eq. (57)") if pinned else None
    return checks.Check(case_ns, framework, dtype, device, quantity, pinned_ns)


def _modes(forms: Forms, rng: random.Random, framework: str) -> dict:
    """Each mode's verdict and errors, and beside eager whether the relative view accepts it
    (runner / mode_verdicts.modes_record); newer writers add the mode's own outcome, what it
    raised (its errors then null) and how it refused undefined input."""
    modes, newer = {}, rng.random() < 0.5
    for name in MODES[framework]:
        mode = {"passed": rng.random() < 0.6, "max_ulp_err": forms("modes.max_ulp_err", rng.random() * 10),
                "rms_err": forms("modes.rms_err", rng.random() * 1e-7)}
        if newer:
            mode["outcome"] = rng.choice(results.OUTCOMES[:4])
            if rng.random() < 0.2:
                mode.update(max_ulp_err=None, rms_err=None, raised="ValueError: the compiler refused the shape")
            if rng.random() < 0.2:
                mode["refused"] = rng.choice(("raised", "nan"))
        if name != "eager" and "eager" in MODES[framework] and "raised" not in mode:
            mode["same_as_eager"] = rng.random() < 0.6
        modes[name] = mode
    return modes


def _golden(forms: Forms, rng: random.Random, k: int) -> dict:
    return {"verdict": VERDICTS[k % len(VERDICTS)], "variant": rng.choice(("default", "logits", "probabilities")),
            "printed": _summary(forms, rng, "golden.printed", None),
            "precision": rng.choice(("exact", "to 4 digits", "to 2 decimals", "within rel 0.001 and abs 0")),
            "reference": _summary(forms, rng, "golden.reference", "float64")}


def _finish(record: dict, outcome: str, k: int, rng: random.Random, entries: list[str]) -> None:
    """Outcome, reason, message and the fields that go with them, as runner._run sets them."""
    record["outcome"] = outcome
    if outcome == "skipped":
        reason = "no-device" if record["device"] == "cuda" and k % 2 else SKIP_REASONS[k % len(SKIP_REASONS)]
        record.update(reason=reason, message=f"{record['framework']} {reason.replace('-', ' ')}: case {record['case']}")
        if reason == "manifest":
            record["manifest"] = entries[k % len(entries)]
    elif outcome == "error":
        reason = ERROR_REASONS[k % len(ERROR_REASONS)]
        record.update(reason=reason, message=f"{record['framework']} raised ValueError: bad input\n  second line")
        if reason == "raised":
            record["failure"] = ["raises"]
    elif outcome in ("xfailed", "xpassed"):
        record.update(reason="manifest", manifest=entries[k % len(entries)],
                      message=f"{entries[k % len(entries)]} no longer diverges (strict xfail): ..."
                      if outcome == "xpassed" else "the reason the manifest gives")
        if k % 3 == 0:
            record["manifest_also"] = [entries[(k + 1) % len(entries)]]
    if outcome in ("failed", "xfailed"):
        record["failure"] = sorted(rng.sample(KINDS, rng.randint(1, 3)))
    if outcome == "failed":
        record["message"] = (f"{record['framework']} {record['op']} {record['quantity']} {record['dtype']} on "
                             f"{record['device']} vs reference variant default\n1/4 elements outside tolerance")
        record["reason"] = "manifest-mismatch" if k % 4 == 0 else None
    if record.get("undefined") and outcome == "passed":
        record["refused"] = ("raised", "nan")[k % 2]


def variety_records(seed: int = 0, odd: bool = False) -> tuple[list[dict], Forms]:
    """The records, and the Forms that says which value forms each field received."""
    rng = random.Random(seed)
    forms = Forms(rng, odd)
    known = [e.id for e in manifest.load()]
    entries = known[: 6] + ["entry-from-another-manifest"]  # one id this manifest lacks
    out, k, goldens = [], 0, 0
    for (fi, framework), (qi, quantity), (di, device) in itertools.product(
            enumerate(FRAMEWORKS), enumerate(checks.QUANTITIES), enumerate(checks.DEVICES)):
        k += 1
        outcome = results.OUTCOMES[(fi + qi + 3 * di) % len(results.OUTCOMES)]  # each framework and quantity: all
        dtype = FLOAT_DTYPES[(fi + qi + di) % len(FLOAT_DTYPES)]
        op = "linear_cross_entropy" if "linear" in quantity else rng.choice(sorted(set(OPS) - {"linear_cross_entropy"}))
        pinned = quantity in ("loss", "grad_logits") and k % 5 == 0
        undefined = k % 11 == 0
        path = (None if framework == PLUGIN and k % 2 else "/elsewhere/own-cases.yaml" if k % 13 == 0
                else str(REPO / "cases" / f"{op.split('_')[0]}.yaml"))
        check = _check(framework, quantity, dtype, device, f"{rng.choice(CASE_WORDS)}-{k}", op, pinned,
                       undefined, path)
        record = runner.base_record(check)
        record["seconds"] = forms("seconds", round(rng.random(), 6))
        if pinned:
            record["golden"] = _golden(forms, rng, goldens)
            goldens += 1
        if outcome not in ("skipped", "error"):  # it ran and was compared
            record["framework_version"] = f"{fi}.{qi}.{di}"
            record["variant"] = rng.choice(("default", "logits", "probabilities"))
            record["expected"] = _summary(forms, rng, "expected", "float64")
            record["actual"] = _summary(forms, rng, "actual", dtype)
            record["max_abs_err"] = forms("max_abs_err", rng.random() * 1e-6)
            record["max_ulp_err"] = forms("max_ulp_err", rng.random() * 100)
            record["tolerance"] = {key: forms(f"tolerance.{key}", rng.random()) for key in
                                   ("ulp", "abs", "rel", "bound_at_worst")}
            if framework in MODES:
                record["modes"] = _modes(forms, rng, framework)
        elif outcome == "error" and k % 2:
            record["framework_version"] = f"{fi}.{qi}"
        _finish(record, outcome, k, rng, entries)
        out.append(record)
    return out + process_records(), forms


def process_records() -> list[dict]:
    """Error records standing for a pytest process of `run` that died, hung or exited
    abnormally (the shape of conformance/results/merge_processes.py ProcessEnd.records): no
    case, quantity or dtype; newer writers add the device and the command that reruns it."""
    ends = (("paddle", "paddle", -6, "process-died", "SIGABRT", None, "died (exit -6, SIGABRT); no results written"),
            ("keras-jax", "keras-jax", None, "process-hung", None, 12,
             "hung (killed after 600 s (--process-timeout)); 12 results written and kept"),
            ("keras-tensorflow", "tf_keras", 3, "process-exited", None, None,
             "exited abnormally (exit 3, internal error); no results written"),
            ("keras-tensorflow", PLUGIN, 1, "results-unreadable", None, None,
             "ended (exit 1); its results file is unreadable (not valid JSON)"))
    out = []
    for i, (label, framework, code, reason, signal, written, how) in enumerate(ends):
        record = {"id": f"{label}::process::{framework}::cpu", "case": None, "op": "(process)", "quantity": None,
                  "kind": "process", "options": {}, "framework": framework, "framework_version": None,
                  "variant": None, "dtype": None, "device": "cpu", "outcome": "error", "reason": reason,
                  "expected": None, "actual": None, "max_abs_err": None, "max_ulp_err": None, "tolerance": None,
                  "message": f"the {label} process {how}; checks of {framework}", "file": None,
                  "process": label, "exit_status": code, "signal": signal, "results_written": written,
                  "seconds": 600.0}
        if i % 2:  # one record per device, and the process's own command line
            process = frameworks.process_of(framework)
            variables = " ".join(f"{k}={v}" for k, v in frameworks.process_environment(process).items())
            record.update(id=record["id"].replace("::cpu", "::cuda"), device="cuda",
                          rerun=f"{variables} python -m pytest conformance/pytest/suite --framework {framework}")
        out.append(record)
    return out


def variety_environment(records: list[dict]) -> dict:
    """The environment a merged run writes: versions, packages, devices, Keras backends, unavailable ones."""
    env = results.environment({})
    env["date"] = "2026-01-01T00:00:00+00:00"
    env["manifest_matched"] = sorted({r["manifest"] for r in records if r.get("manifest")})
    for i, framework in enumerate(FRAMEWORKS):
        if framework in ("mlx", "paddle"):
            env["frameworks"][framework] = {"version": None, "unavailable": f"No module named {framework!r}"}
            continue
        known = frameworks.BUILTIN.get(framework)
        info = {"version": f"{i}.0", "packages": {p: f"{i}.0" for p in (known.packages if known else ("example",))},
                "devices": ["cpu", "cuda"] if i % 3 else ["cpu"]}
        if known and known.keras_backend:
            info["backend"] = known.keras_backend
        env["frameworks"][framework] = info
    return env


def variety_document(seed: int = 0, odd: bool = False) -> dict:
    """A whole results document, as results.write would write it."""
    records, _ = variety_records(seed, odd)
    return {"schema": results.SCHEMA, "environment": variety_environment(records),
            "results": sorted(records, key=lambda r: r["id"])}


def write_variety(path: str | Path, seed: int = 0, odd: bool = False) -> Path:
    records, _ = variety_records(seed, odd)
    results.write(path, variety_environment(records), records)
    return Path(path)


if __name__ == "__main__":
    print(write_variety(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
